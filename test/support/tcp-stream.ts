/**
 * TCP payload reassembly for golden fixtures captured with tcpdump on loopback or a lab
 * segment: splits IPv4/TCP records into connections (keyed by the client's address and port,
 * the server identified by its port) and yields each direction's bytes in order, dropping
 * retransmitted bytes by sequence number. Enough for captures of well-behaved local traffic,
 * not a general TCP stack (no reordering window, no SACK).
 */
import { linkLayer, type PcapRecord } from './pcap.js';

/** One in-order piece of a connection's payload. */
export interface FlowChunk {
  readonly fromClient: boolean;
  readonly time: number;
  readonly payload: Buffer;
}

export interface TcpFlow {
  /** "ip:port" of the side that did not use `serverPort`. */
  readonly client: string;
  readonly chunks: FlowChunk[];
}

/** Reassembles every connection to or from `serverPort`, in order of first appearance. */
export function tcpFlows(records: readonly PcapRecord[], serverPort: number): TcpFlow[] {
  const flows = new Map<string, { flow: TcpFlow; next: { c?: number; s?: number } }>();
  for (const r of records) {
    const link = linkLayer(r);
    if (!link) continue;
    const { offset: off, etherType } = link;
    if (etherType !== 0x0800) continue;
    const ip = r.data;
    const ihl = (ip[off]! & 0x0f) * 4;
    if (ip[off + 9] !== 6) continue;
    const totalLen = ip.readUInt16BE(off + 2);
    const src = `${ip[off + 12]}.${ip[off + 13]}.${ip[off + 14]}.${ip[off + 15]}`;
    const dst = `${ip[off + 16]}.${ip[off + 17]}.${ip[off + 18]}.${ip[off + 19]}`;
    const t = off + ihl;
    const sport = ip.readUInt16BE(t);
    const dport = ip.readUInt16BE(t + 2);
    const seq = ip.readUInt32BE(t + 4);
    const dataOff = (ip[t + 12]! >> 4) * 4;
    const flags = ip[t + 13]!;
    const payload = ip.subarray(t + dataOff, off + totalLen);
    let fromClient: boolean;
    let client: string;
    if (dport === serverPort) {
      fromClient = true;
      client = `${src}:${sport}`;
    } else if (sport === serverPort) {
      fromClient = false;
      client = `${dst}:${dport}`;
    } else continue;
    let f = flows.get(client);
    if (!f) {
      f = { flow: { client, chunks: [] }, next: {} };
      flows.set(client, f);
    }
    const dir = fromClient ? 'c' : 's';
    const SYN = 0x02;
    if (flags & SYN) {
      f.next[dir] = (seq + 1) >>> 0;
      continue;
    }
    if (payload.length === 0) continue;
    const expected = f.next[dir] ?? seq;
    const skip = (expected - seq) | 0; // bytes of this segment already seen
    if (skip >= payload.length) continue;
    if (skip < 0) throw new Error(`tcp-stream: gap of ${-skip} bytes in ${client} ${dir} (capture lost packets)`);
    f.flow.chunks.push({ fromClient, time: r.time, payload: Buffer.from(payload.subarray(skip)) });
    f.next[dir] = (seq + payload.length) >>> 0;
  }
  return [...flows.values()].map((x) => x.flow);
}
