/**
 * The PDUs of the golden iSCSI captures (src/wire/iscsi/testdata/*.pcap): each with its
 * exact wire bytes and direction, in capture order. Shared by the golden and fuzz tests.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readPcap } from './pcap.js';
import { tcpFlows } from './tcp-stream.js';
import { PduReader, paddingLength } from '../../src/wire/iscsi/pdu-framing.js';
import { MAX_DATA_SEGMENT_LENGTH } from '../../src/wire/iscsi/iscsi-constants.js';

/** Absolute path of the captures (the compiled tests run from dist/, the files stay in src/). */
export const ISCSI_TESTDATA = join(import.meta.dirname, '../../../src/wire/iscsi/testdata');
/** The port tgt listened on during the captures. */
export const CAPTURE_PORT = 13260;

export interface CapturedPdu {
  readonly flow: number;
  readonly fromClient: boolean;
  readonly bytes: Buffer;
}

export function captureFiles(): string[] {
  return readdirSync(ISCSI_TESTDATA).filter((f) => f.endsWith('.pcap')).sort();
}

/** Every PDU of every connection in one capture. Throws if a flow ends inside a PDU. */
export function capturedPdus(file: string): CapturedPdu[] {
  const out: CapturedPdu[] = [];
  tcpFlows(readPcap(join(ISCSI_TESTDATA, file)), CAPTURE_PORT).forEach((flow, i) => {
    const readers = { c: new PduReader({ maxDataSegmentLength: MAX_DATA_SEGMENT_LENGTH }), s: new PduReader({ maxDataSegmentLength: MAX_DATA_SEGMENT_LENGTH }) };
    for (const ch of flow.chunks) {
      for (const raw of readers[ch.fromClient ? 'c' : 's'].push(ch.payload)) {
        out.push({ flow: i + 1, fromClient: ch.fromClient, bytes: Buffer.concat([raw.bhs, raw.ahs, raw.data, Buffer.alloc(paddingLength(raw.data.length))]) });
      }
    }
    if (readers.c.buffered + readers.s.buffered !== 0) throw new Error(`${file} flow ${i + 1} ends inside a PDU`);
  });
  return out;
}
