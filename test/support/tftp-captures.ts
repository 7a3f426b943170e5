/**
 * The TFTP golden captures (src/wire/tftp/testdata/capture.sh): iPXE in QEMU, atftp and curl
 * fetching from our server. Shared by the codec's golden test and the fuzz corpus.
 */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { readPcap, udpPayloads } from './pcap.js';

/** Capture names, each `<name>.pcap` with a readable `<name>.parsed` beside it. */
export const TFTP_CAPTURES = ['ipxe-rrq', 'atftp-rrq', 'curl-rrq'] as const;

/** Source folder of the fixtures (tests run from dist/, fixtures stay in src/). */
export const TFTP_TESTDATA = join(dirname(fileURLToPath(import.meta.url)).replace(/[/\\]dist([/\\]test[/\\]support)$/, '$1'), '..', '..', 'src', 'wire', 'tftp', 'testdata');

/** UDP payloads of one capture, in order, with their ports. */
export function capturedTftpPayloads(name: string): Array<{ srcPort: number; dstPort: number; payload: Buffer }> {
  return udpPayloads(readPcap(join(TFTP_TESTDATA, `${name}.pcap`)));
}

/** Every captured payload, for fuzz corpora. */
export function allCapturedTftpPayloads(): Buffer[] {
  return TFTP_CAPTURES.flatMap((n) => capturedTftpPayloads(n).map((p) => p.payload));
}
