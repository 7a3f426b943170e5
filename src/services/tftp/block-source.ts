/**
 * Where a transfer's DATA packets come from. TftpServer asks for the packet of an absolute
 * block synchronously on its send path and only awaits `load` when the block is not in memory.
 *
 * FileBlockSource (octet mode) reads a chunk of blocks with one preadv(2) straight into a
 * buffer laid out as ready-made packets — [4-byte header | block] × n — so each DATA packet is
 * a view of that buffer: no copy, one read syscall per chunk, one send syscall per packet. A
 * chunk holds max(window, 256 KiB) worth of blocks (at most 1 MiB, at most 1024 blocks: the
 * iovec limit) and the next chunk is read ahead while the current one is being sent. Each
 * read is a round trip through libuv's thread pool (futex wake-ups, an eventfd, a context
 * switch on a small machine): 256 KiB rather than 64 KiB cut the server's system time at
 * windowsize 1 by about a quarter, for at most 1 MiB held per transfer. Only a
 * few chunks are kept; an evicted chunk that a window restart needs again is re-read. Buffers
 * are never reused, so a send still queued in the kernel-side path keeps its bytes.
 *
 * NetasciiBlockSource translates the whole file in memory (LF → CR LF, CR → CR NUL, RFC 1350
 * / RFC 764), for text files up to NETASCII_MAX_FILE bytes.
 */
import { readv, readFile } from 'node:fs';
import { promisify } from 'node:util';
import { DisklessError } from '../../errors/index.js';
import { TFTP_DATA_HEADER_LENGTH, writeDataHeader } from '../../wire/tftp/tftp-packet.js';
import { TftpTransfer } from './tftp-transfer.js';

const readvP = promisify(readv);

/** Largest file served in netascii mode (translated in memory). */
export const NETASCII_MAX_FILE = 16 * 1024 * 1024;
const CHUNK_MIN_BYTES = 256 * 1024;
const CHUNK_MAX_BYTES = 1024 * 1024;
const CHUNK_MAX_BLOCKS = 1024;
const CHUNKS_KEPT = 4;

export interface BlockSource {
  /** Bytes that will be sent (tsize). */
  readonly size: number;
  /** The DATA packet of absolute block `abs` (header included), or undefined when not in memory yet. */
  packet(abs: number): Buffer | undefined;
  /** Brings block `abs` into memory; resolves at once when it is. Rejects with TFTP_FILE_CHANGED if the file shrank. */
  load(abs: number): Promise<void>;
  /** Starts reading the blocks after `abs` if they are not in memory (errors surface on `load`). */
  readAhead(abs: number): void;
  /** Blocks before `abs` are acknowledged and will not be asked for again. */
  release(abs: number): void;
}

interface Chunk {
  readonly first: number;
  readonly count: number;
  readonly buf: Buffer;
  readonly offsets: readonly number[];
  ready: boolean;
  readonly loading: Promise<void>;
}

/** Octet-mode blocks read from an open file descriptor (the caller closes it). */
export class FileBlockSource implements BlockSource {
  readonly size: number;
  private readonly fd: number;
  private readonly blockSize: number;
  private readonly totalBlocks: number;
  private readonly blocksPerChunk: number;
  private readonly chunks = new Map<number, Chunk>();
  /** Chunks below this index are acknowledged and dropped. */
  private releasedBelow = 0;

  constructor(fd: number, size: number, blockSize: number, windowSize: number) {
    this.fd = fd;
    this.size = size;
    this.blockSize = blockSize;
    this.totalBlocks = Math.floor(size / blockSize) + 1;
    const target = Math.min(CHUNK_MAX_BYTES, Math.max(CHUNK_MIN_BYTES, windowSize * blockSize));
    this.blocksPerChunk = Math.max(1, Math.min(CHUNK_MAX_BLOCKS, Math.floor(target / blockSize)));
  }

  packet(abs: number): Buffer | undefined {
    const chunk = this.chunks.get(Math.floor((abs - 1) / this.blocksPerChunk));
    if (chunk === undefined || !chunk.ready) return undefined;
    const i = abs - chunk.first;
    const start = chunk.offsets[i]!;
    return chunk.buf.subarray(start, start + TFTP_DATA_HEADER_LENGTH + this.blockLength(abs));
  }

  load(abs: number): Promise<void> {
    return this.chunk(Math.floor((abs - 1) / this.blocksPerChunk)).loading;
  }

  readAhead(abs: number): void {
    const next = Math.floor((abs - 1) / this.blocksPerChunk) + 1;
    if (this.chunks.has(next) || next * this.blocksPerChunk >= this.totalBlocks) return;
    this.chunk(next).loading.catch(() => undefined);
  }

  release(abs: number): void {
    // Called on every ACK: do work only when `abs` moved into a later chunk.
    const index = Math.floor((abs - 1) / this.blocksPerChunk);
    if (index <= this.releasedBelow) return;
    this.releasedBelow = index;
    for (const key of this.chunks.keys()) if (key < index) this.chunks.delete(key);
  }

  private blockLength(abs: number): number {
    return Math.max(0, Math.min(this.blockSize, this.size - (abs - 1) * this.blockSize));
  }

  private chunk(index: number): Chunk {
    const existing = this.chunks.get(index);
    if (existing) return existing;
    if (this.chunks.size >= CHUNKS_KEPT) {
      // Evict the chunk farthest behind; a restart that needs it again re-reads it.
      const oldest = Math.min(...this.chunks.keys());
      this.chunks.delete(oldest);
    }
    const first = index * this.blocksPerChunk + 1;
    const count = Math.min(this.blocksPerChunk, this.totalBlocks - first + 1);
    const slot = TFTP_DATA_HEADER_LENGTH + this.blockSize;
    const buf = Buffer.allocUnsafe(count * slot);
    const offsets: number[] = [];
    const views: Buffer[] = [];
    let expected = 0;
    for (let i = 0; i < count; i++) {
      const start = i * slot;
      offsets.push(start);
      writeDataHeader(buf, start, TftpTransfer.wireBlock(first + i));
      const length = this.blockLength(first + i);
      expected += length;
      if (length > 0) views.push(buf.subarray(start + TFTP_DATA_HEADER_LENGTH, start + TFTP_DATA_HEADER_LENGTH + length));
    }
    const position = (first - 1) * this.blockSize;
    const chunk: Chunk = {
      first,
      count,
      buf,
      offsets,
      ready: expected === 0,
      loading:
        expected === 0
          ? Promise.resolve()
          : readvP(this.fd, views, position).then(({ bytesRead }) => {
              if (bytesRead !== expected) {
                this.chunks.delete(index);
                throw new DisklessError('TFTP_FILE_CHANGED', `cannot read TFTP blocks ${first}..${first + count - 1}: got ${bytesRead} of ${expected} bytes at offset ${position}`, {
                  field: 'file',
                  offset: position,
                  expected,
                  bytesRead,
                });
              }
              chunk.ready = true;
            }, (err: unknown) => {
              this.chunks.delete(index);
              throw err;
            }),
    };
    this.chunks.set(index, chunk);
    return chunk;
  }
}

/** RFC 1350 netascii: LF → CR LF, CR → CR NUL. Pure; exported for tests. */
export function toNetascii(text: Buffer): Buffer {
  let extra = 0;
  for (const b of text) if (b === 0x0a || b === 0x0d) extra++;
  const out = Buffer.allocUnsafe(text.length + extra);
  let o = 0;
  for (const b of text) {
    if (b === 0x0a) {
      out[o++] = 0x0d;
      out[o++] = 0x0a;
    } else if (b === 0x0d) {
      out[o++] = 0x0d;
      out[o++] = 0x00;
    } else out[o++] = b;
  }
  return out;
}

/** Netascii-mode blocks: the whole file translated in memory. */
export class NetasciiBlockSource implements BlockSource {
  readonly size: number;
  private readonly text: Buffer;
  private readonly blockSize: number;

  private constructor(text: Buffer, blockSize: number) {
    this.text = text;
    this.size = text.length;
    this.blockSize = blockSize;
  }

  /** Reads and translates the file behind `fd` (size from fstat). Throws TFTP_FILE_TOO_LARGE above NETASCII_MAX_FILE. */
  static async open(fd: number, size: number, blockSize: number): Promise<NetasciiBlockSource> {
    if (size > NETASCII_MAX_FILE) {
      throw new DisklessError('TFTP_FILE_TOO_LARGE', `cannot send a ${size}-byte file in netascii mode: the limit is ${NETASCII_MAX_FILE}`, { field: 'mode', value: 'netascii', size, limit: NETASCII_MAX_FILE });
    }
    const raw = await promisify(readFile)(fd);
    return new NetasciiBlockSource(toNetascii(raw), blockSize);
  }

  packet(abs: number): Buffer {
    const start = (abs - 1) * this.blockSize;
    const data = this.text.subarray(Math.min(start, this.size), Math.min(start + this.blockSize, this.size));
    const out = Buffer.allocUnsafe(TFTP_DATA_HEADER_LENGTH + data.length);
    writeDataHeader(out, 0, TftpTransfer.wireBlock(abs));
    data.copy(out, TFTP_DATA_HEADER_LENGTH);
    return out;
  }

  load(): Promise<void> {
    return Promise.resolve();
  }

  readAhead(): void {}

  release(): void {}
}
