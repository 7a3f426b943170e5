/**
 * Golden fixtures: real sessions captured with tcpdump between real initiators (libiscsi's
 * iscsi-ls / iscsi-inq / iscsi-readcapacity16, qemu-io over libiscsi, iPXE 1.0.0+git-20190125
 * sanbooting in QEMU) and tgt on 127.0.0.1:13260 (see testdata/README.md). Each stream is
 * decoded to a readable dump compared with the checked-in `.txt` (UPDATE_GOLDEN=1 rewrites
 * it), every PDU re-encodes to its exact bytes, and each stream decodes the same when split
 * at every offset.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { captureFiles, capturedPdus, ISCSI_TESTDATA as dir } from '../../../test/support/iscsi-captures.js';
import { PduReader, encodePduBuffer } from './pdu-framing.js';
import { parsePdu } from './iscsi-pdu.js';
import { describePdu } from './describe-pdu.js';
import { MAX_DATA_SEGMENT_LENGTH } from './iscsi-constants.js';

const captures = captureFiles();

test('there are captures to check', () => assert.ok(captures.length >= 6, captures.join(',')));

for (const file of captures) {
  test(`golden dump of ${file}`, () => {
    const pdus = capturedPdus(file);
    assert.ok(pdus.length > 0);
    const text = pdus.map((p) => `#${p.flow} ${p.fromClient ? 'I>' : 'T<'} ${describePdu(parsePdu({ bhs: p.bytes.subarray(0, 48), ahs: p.bytes.subarray(48, 48 + p.bytes[4]! * 4), data: p.bytes.subarray(48 + p.bytes[4]! * 4, 48 + p.bytes[4]! * 4 + p.bytes.readUIntBE(5, 3)) }))}`).join('\n') + '\n';
    const golden = join(dir, file.replace(/\.pcap$/, '.txt'));
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, text);
    assert.equal(text, readFileSync(golden, 'utf8'));
  });

  test(`decode → encode round trip of ${file}`, () => {
    for (const p of capturedPdus(file)) {
      const reader = new PduReader({ maxDataSegmentLength: MAX_DATA_SEGMENT_LENGTH });
      const [raw] = reader.push(p.bytes);
      assert.ok(raw);
      assert.deepEqual(encodePduBuffer(parsePdu(raw)), p.bytes, `re-encoded PDU differs: ${p.bytes.subarray(0, 48).toString('hex')}`);
    }
  });

  test(`stream of ${file} split at every offset`, () => {
    const pdus = capturedPdus(file).filter((p) => p.fromClient);
    const stream = Buffer.concat(pdus.map((p) => p.bytes));
    const want = pdus.map((p) => p.bytes.toString('hex'));
    const step = stream.length > 20000 ? 7 : 1;
    for (let cut = 0; cut <= stream.length; cut += step) {
      const reader = new PduReader({ maxDataSegmentLength: MAX_DATA_SEGMENT_LENGTH });
      const got = [...reader.push(stream.subarray(0, cut)), ...reader.push(stream.subarray(cut))];
      assert.deepEqual(
        got.map((r) => Buffer.concat([r.bhs, r.ahs, r.data, Buffer.alloc((4 - (r.data.length & 3)) & 3)]).toString('hex')),
        want,
        `split at ${cut}`,
      );
    }
    // and one byte at a time
    const reader = new PduReader({ maxDataSegmentLength: MAX_DATA_SEGMENT_LENGTH });
    let n = 0;
    for (let i = 0; i < stream.length; i++) n += reader.push(stream.subarray(i, i + 1)).length;
    assert.equal(n, pdus.length);
  });
}
