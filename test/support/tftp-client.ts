/**
 * A tiny raw TFTP client for tests: sends any request bytes (including names atftp would
 * mangle) and collects what comes back, ACKing like an RFC 7440 client. Not a product client:
 * no retransmission of its own unless asked, bounded by a deadline.
 */
import { createSocket, type Socket } from 'node:dgram';
import { decodeTftpPacket, encodeAck, encodeTftpPacket, TftpOpcode, type TftpOption, type TftpPacket } from '../../src/wire/tftp/tftp-packet.js';

export interface FetchResult {
  /** The assembled file, when the transfer ended with a short block. */
  readonly data?: Buffer;
  /** ERROR packet received instead. */
  readonly error?: { readonly code: number; readonly message: string };
  readonly optionAck?: readonly TftpOption[];
  /** Port the server answered from (its TID). */
  readonly serverPort?: number;
  readonly packets: number;
}

export interface FetchOptions {
  readonly host?: string;
  readonly port: number;
  readonly timeoutMs?: number;
  /** Windowsize the client expects (to know when to ACK); default 1. */
  readonly windowSize?: number;
  /** Stop ACKing after this many blocks (to test the server's retransmission). */
  readonly stopAckingAfter?: number;
}

/** Sends raw request bytes and runs the download to its end, an ERROR, or the deadline. */
export async function rawFetch(request: Buffer, o: FetchOptions): Promise<FetchResult> {
  const socket: Socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  const host = o.host ?? '127.0.0.1';
  try {
    return await new Promise<FetchResult>((resolve) => {
      const chunks: Buffer[] = [];
      let expected = 1;
      let sinceAck = 0;
      let packets = 0;
      let optionAck: readonly TftpOption[] | undefined;
      let serverPort: number | undefined;
      let blockSize = 512;
      const windowSize = o.windowSize ?? 1;
      const done = (r: Omit<FetchResult, 'packets'>) => {
        clearTimeout(timer);
        resolve({ ...r, packets, ...(optionAck ? { optionAck } : {}), ...(serverPort ? { serverPort } : {}) });
      };
      const timer = setTimeout(() => done({}), o.timeoutMs ?? 5000);
      socket.on('message', (msg, rinfo) => {
        packets++;
        serverPort ??= rinfo.port;
        let p: TftpPacket;
        try {
          p = decodeTftpPacket(msg);
        } catch {
          return;
        }
        const ack = (n: number) => socket.send(encodeAck(n & 0xffff), rinfo.port, rinfo.address);
        if (p.opcode === TftpOpcode.error) return done({ error: { code: p.errorCode, message: p.message } });
        if (p.opcode === TftpOpcode.optionAck) {
          optionAck = p.options;
          const b = p.options.find((x) => x.name === 'blksize');
          if (b) blockSize = Number(b.value);
          return ack(0);
        }
        if (p.opcode !== TftpOpcode.data) return;
        if (p.block !== (expected & 0xffff)) return ack(expected - 1);
        if (o.stopAckingAfter !== undefined && expected > o.stopAckingAfter) return;
        chunks.push(Buffer.from(p.data));
        expected++;
        sinceAck++;
        const last = p.data.length < blockSize;
        if (last || sinceAck === windowSize) {
          sinceAck = 0;
          ack(expected - 1);
        }
        if (last) done({ data: Buffer.concat(chunks) });
      });
      socket.send(request, o.port, host);
    });
  } finally {
    socket.close();
  }
}

/** Encodes an RRQ. */
export function readRequest(filename: string, options: Record<string, string> = {}, mode = 'octet'): Buffer {
  return encodeTftpPacket({ opcode: TftpOpcode.readRequest, filename, mode, options: Object.entries(options).map(([name, value]) => ({ name, value })) });
}
