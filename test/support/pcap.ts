/**
 * Reads classic pcap files (tcpdump -w) so golden tests can decode packets captured from real
 * clients in the lab. Only what the fixtures need: microsecond or nanosecond pcap, either byte
 * order, link types Ethernet (1) and Linux cooked (113). Capture with
 * `tcpdump -i IFACE -w FILE -s 0 'udp port 67 or udp port 68'` and commit the file under a
 * testdata/ folder beside the codec.
 */
import { readFileSync } from 'node:fs';

export interface PcapRecord {
  /** Seconds since the epoch, fractional. */
  readonly time: number;
  /** The captured bytes, starting at the link-layer header. */
  readonly data: Buffer;
  readonly linkType: number;
}

export const LinkType = { ethernet: 1, linuxCooked: 113 } as const;

export function readPcap(path: string): PcapRecord[] {
  return parsePcap(readFileSync(path));
}

export function parsePcap(file: Buffer): PcapRecord[] {
  if (file.length < 24) throw new Error('pcap: file shorter than its 24-byte header');
  const magicLE = file.readUInt32LE(0);
  let le: boolean;
  let nano: boolean;
  if (magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d) {
    le = true;
    nano = magicLE === 0xa1b23c4d;
  } else if (file.readUInt32BE(0) === 0xa1b2c3d4 || file.readUInt32BE(0) === 0xa1b23c4d) {
    le = false;
    nano = file.readUInt32BE(0) === 0xa1b23c4d;
  } else throw new Error('pcap: bad magic (pcapng is not supported: capture with tcpdump -w)');
  const u32 = (off: number) => (le ? file.readUInt32LE(off) : file.readUInt32BE(off));
  const linkType = u32(20);
  const out: PcapRecord[] = [];
  let off = 24;
  while (off + 16 <= file.length) {
    const sec = u32(off);
    const frac = u32(off + 4);
    const incl = u32(off + 8);
    off += 16;
    if (off + incl > file.length) throw new Error('pcap: truncated record');
    out.push({ time: sec + frac / (nano ? 1e9 : 1e6), data: Buffer.from(file.subarray(off, off + incl)), linkType });
    off += incl;
  }
  return out;
}

/**
 * Where the network-layer packet starts in a record and its EtherType, past an Ethernet
 * header (with one 802.1Q tag) or a Linux cooked header; undefined for other link types.
 */
export function linkLayer(r: PcapRecord): { offset: number; etherType: number } | undefined {
  if (r.linkType === LinkType.ethernet) {
    const etherType = r.data.readUInt16BE(12);
    return etherType === 0x8100 ? { offset: 18, etherType: r.data.readUInt16BE(16) } : { offset: 14, etherType };
  }
  if (r.linkType === LinkType.linuxCooked) return { offset: 16, etherType: r.data.readUInt16BE(14) };
  return undefined;
}

/**
 * Strips Ethernet (or Linux cooked) + IPv4 + UDP headers and returns the UDP payloads with
 * their ports, for codec fixtures. Non-IPv4/UDP records are skipped.
 */
export function udpPayloads(records: readonly PcapRecord[]): Array<{ srcPort: number; dstPort: number; payload: Buffer; time: number }> {
  const out: Array<{ srcPort: number; dstPort: number; payload: Buffer; time: number }> = [];
  for (const r of records) {
    const link = linkLayer(r);
    if (!link) continue;
    const { offset: off, etherType } = link;
    if (etherType !== 0x0800 || r.data.length < off + 20) continue;
    const ihl = (r.data[off]! & 0x0f) * 4;
    if (r.data[off + 9] !== 17) continue;
    const udp = off + ihl;
    const len = r.data.readUInt16BE(udp + 4);
    out.push({ srcPort: r.data.readUInt16BE(udp), dstPort: r.data.readUInt16BE(udp + 2), payload: r.data.subarray(udp + 8, udp + len), time: r.time });
  }
  return out;
}
