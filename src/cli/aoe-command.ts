/**
 * `diskless aoe …`: the project's AoE initiator (src/clients/aoe) from the command line:
 * discover the targets on a segment, identify one, read a range to a file or stdout, write a
 * file to it, read or edit its mask list. Each subcommand opens one raw socket on --iface,
 * does one thing and closes it. Needs root. Exit status 0 ok, 1 the operation failed
 * (`error AOE_…: …`), 2 bad usage (the option, the value, what is allowed).
 */
import { once } from 'node:events';
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Command } from 'commander';
import { parseSize } from '../config/parse-size.js';
import { DisklessError, isDisklessError } from '../errors/index.js';
import type { AoeDevice, AoeTargetInfo } from '../clients/aoe/aoe-device.js';
import { AoeInitiator } from '../clients/aoe/aoe-initiator.js';
import { DEFAULT_AOE_DISCOVER_MS, DEFAULT_AOE_MAX_OUTSTANDING, DEFAULT_AOE_TIMEOUT_MS, DEFAULT_AOE_TRIES } from '../clients/aoe/aoe-initiator-options.js';
import { macToBuffer, macToString } from '../wire/ethernet/ethernet-frame.js';
import { SECTOR_SIZE } from '../wire/aoe/ata-command.js';
import { usageError } from './volume-format.js';
import { parseInteger, parseMac } from './option-values.js';

/** Bytes per read or write call the CLI issues; several are in flight so the window never drains between them. */
const CHUNK_BYTES = 1024 * 1024;
/** Chunk calls in flight at once. */
const CHUNKS_IN_FLIGHT = 4;

/** `eS.L` (shelf 0-65534, slot 0-254), as `aoe-stat` and /dev/etherd name targets. */
export function parseAoeAddress(value: string): { shelf: number; slot: number } {
  const allowed = 'eSHELF.SLOT, shelf 0-65534 and slot 0-254, e.g. e1.0';
  const m = /^e(\d{1,5})\.(\d{1,3})$/.exec(value);
  if (!m) throw usageError('argument TARGET', value, allowed);
  const shelf = Number(m[1]);
  const slot = Number(m[2]);
  if (shelf > 65534) throw usageError('argument TARGET', value, allowed, `shelf ${shelf} is above 65534 (0xffff addresses every shelf)`);
  if (slot > 254) throw usageError('argument TARGET', value, allowed, `slot ${slot} is above 254 (0xff addresses every slot)`);
  return { shelf, slot };
}

/** `MAC,MAC,…` (see parseMac). */
export function parseMacList(option: string, value: string): Buffer[] {
  return value.split(',').map((m) => macToBuffer(parseMac(option, m)));
}

/** A byte count with an optional K/M/G/T suffix (binary), optionally a multiple of `multiple`. */
export function parseBytes(option: string, value: string, multiple = 1): number {
  const allowed = `a byte count (K, M, G, T suffixes allowed)${multiple > 1 ? `, a multiple of ${multiple}` : ''}`;
  let bytes: number;
  try {
    bytes = parseSize(value);
  } catch {
    throw usageError(`option ${option}`, value, allowed);
  }
  if (bytes % multiple !== 0) throw usageError(`option ${option}`, value, allowed, `not a multiple of ${multiple}`);
  return bytes;
}

interface CommonFlags {
  iface?: string;
  timeoutMs: string;
  tries: string;
  window: string;
}

/** The initiator the common options describe; a missing interface is a usage error naming --iface. */
function openInitiator(flags: CommonFlags, address?: { shelf: number; slot: number }): AoeInitiator {
  if (flags.iface === undefined || flags.iface === '') throw usageError('option --iface', flags.iface ?? '', 'the network interface the targets are on; the option is required');
  const options = {
    ifname: flags.iface,
    ...(address ?? {}),
    timeoutMs: parseInteger('--timeout-ms', flags.timeoutMs, 1, 3_600_000),
    tries: parseInteger('--tries', flags.tries, 1, 1000),
    maxOutstanding: parseInteger('--window', flags.window, 1, 65535),
  };
  try {
    return new AoeInitiator(options);
  } catch (err) {
    if (isDisklessError(err, 'NET_INTERFACE_NOT_FOUND')) throw usageError('option --iface', flags.iface, 'an existing network interface of this namespace', 'no such interface');
    throw err;
  }
}

function addCommonOptions(cmd: Command): Command {
  return cmd
    .option('--iface <name>', 'network interface the targets are on (required)')
    .option('--timeout-ms <ms>', 'how long one try waits for its answer', String(DEFAULT_AOE_TIMEOUT_MS))
    .option('--tries <n>', 'sends per command before giving up', String(DEFAULT_AOE_TRIES))
    .option('--window <n>', "most commands in flight (the target's buffer count caps it too)", String(DEFAULT_AOE_MAX_OUTSTANDING));
}

function describeTarget(t: AoeTargetInfo): string {
  return `e${t.shelf}.${t.slot}  ${macToString(t.mac)}  buffers ${t.bufferCount}  sectors/frame ${t.sectorCount}  firmware 0x${t.firmwareVersion.toString(16).padStart(4, '0')}  config ${JSON.stringify(t.config.toString('latin1'))}`;
}

function targetJson(t: AoeTargetInfo) {
  return { target: `e${t.shelf}.${t.slot}`, shelf: t.shelf, slot: t.slot, mac: macToString(t.mac), bufferCount: t.bufferCount, sectorCount: t.sectorCount, firmwareVersion: t.firmwareVersion, config: t.config.toString('latin1') };
}

function deviceJson(d: AoeDevice) {
  const { sectors, lba48, model, serial, firmware } = d.identity;
  return { ...targetJson(d), sectors, bytes: sectors * SECTOR_SIZE, lba48, model, serial, firmware, window: d.window, sectorsPerCommand: d.sectorsPerCommand };
}

/** Writes to stdout honouring backpressure; EPIPE (the reader left) becomes OUTPUT_CLOSED. */
class StdoutSink {
  private failure: Error | undefined;
  private written = 0;
  constructor(private readonly target: NodeJS.WritableStream) {
    target.on('error', (err: Error) => (this.failure = err));
  }

  async write(chunk: Buffer): Promise<void> {
    this.check();
    this.written += chunk.length;
    if (!this.target.write(chunk)) await Promise.race([once(this.target, 'drain'), new Promise((resolve) => this.target.once('error', resolve))]);
    this.check();
  }

  async end(): Promise<void> {
    // a pipe reports EPIPE a tick after a synchronous write: wait so a reader that left is noticed
    await new Promise((resolve) => setImmediate(resolve));
    this.check();
  }

  private check(): void {
    if (!this.failure) return;
    const code = (this.failure as NodeJS.ErrnoException).code;
    if (code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED') throw new DisklessError('OUTPUT_CLOSED', `standard output closed after ${this.written} bytes: the reader got an incomplete range`, { bytes: this.written }, { cause: this.failure });
    throw this.failure;
  }
}

/**
 * Reads bytes [offset, offset + length) of the target chunk by chunk, CHUNKS_IN_FLIGHT chunk
 * reads ahead, and hands them to `sink` in order. Unaligned ends read whole sectors and trim.
 */
async function readRange(aoe: AoeInitiator, offset: number, length: number, sink: (chunk: Buffer) => Promise<void>): Promise<void> {
  const firstSector = Math.floor(offset / SECTOR_SIZE);
  const endSector = Math.ceil((offset + length) / SECTOR_SIZE);
  const sectorsPerChunk = CHUNK_BYTES / SECTOR_SIZE;
  const pending: Array<{ lba: number; data: Promise<Buffer> }> = [];
  let next = firstSector;
  const issue = () => {
    while (pending.length < CHUNKS_IN_FLIGHT && next < endSector) {
      const count = Math.min(sectorsPerChunk, endSector - next);
      const data = aoe.read(next, count);
      data.catch(() => undefined); // awaited in order below; a later chunk's failure must not go unhandled meanwhile
      pending.push({ lba: next, data });
      next += count;
    }
  };
  issue();
  while (pending.length > 0) {
    const { lba, data } = pending.shift()!;
    const chunk = await data;
    issue();
    const start = Math.max(offset - lba * SECTOR_SIZE, 0);
    const end = Math.min(offset + length - lba * SECTOR_SIZE, chunk.length);
    await sink(chunk.subarray(start, end));
  }
}

function reportStats(what: string, bytes: number, started: bigint, aoe: AoeInitiator): void {
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const s = aoe.statistics();
  process.stderr.write(`${what} ${bytes} bytes in ${seconds.toFixed(3)} s: ${(bytes / 1e6 / seconds).toFixed(1)} MB/s (${s.commands} commands, ${s.retransmits} retransmits, at most ${s.maxInFlight} in flight)\n`);
}

async function readCommand(address: string, flags: CommonFlags & { offset: string; length?: string; out: string; stats?: boolean }): Promise<void> {
  const target = parseAoeAddress(address);
  const offset = parseBytes('--offset', flags.offset);
  const requested = flags.length === undefined ? undefined : parseBytes('--length', flags.length);
  if (flags.out === '') throw usageError('option --out', '', 'a file path, or - for standard output');
  const aoe = openInitiator(flags, target);
  let file: FileHandle | undefined;
  try {
    const device = await aoe.connect();
    const size = device.identity.sectors * SECTOR_SIZE;
    if (offset > size) throw usageError('option --offset', flags.offset, `0-${size} (the size of e${target.shelf}.${target.slot})`);
    const length = requested ?? size - offset;
    if (offset + length > size) throw usageError('option --length', flags.length!, `0-${size - offset} (the bytes of e${target.shelf}.${target.slot} after --offset ${offset})`);
    let sink: (chunk: Buffer) => Promise<void>;
    let stdout: StdoutSink | undefined;
    if (flags.out === '-') {
      stdout = new StdoutSink(process.stdout);
      sink = (chunk) => stdout!.write(chunk);
    } else {
      try {
        file = await open(flags.out, 'w');
      } catch (err) {
        throw usageError('option --out', flags.out, 'a file path this user can write, or - for standard output', (err as NodeJS.ErrnoException).code);
      }
      const fh = file;
      sink = async (chunk) => void (await fh.write(chunk));
    }
    const started = process.hrtime.bigint();
    await readRange(aoe, offset, length, sink);
    await stdout?.end();
    if (flags.stats) reportStats('read', length, started, aoe);
  } finally {
    await file?.close();
    aoe.close();
  }
}

/** Chunks of the input: a file (size known) or stdin. */
async function* inputChunks(path: string): AsyncGenerator<Buffer> {
  if (path === '-') {
    let pending: Buffer[] = [];
    let size = 0;
    for await (const piece of process.stdin as AsyncIterable<Buffer>) {
      pending.push(piece);
      size += piece.length;
      if (size >= CHUNK_BYTES) {
        const all = Buffer.concat(pending, size);
        const whole = all.length - (all.length % CHUNK_BYTES);
        for (let at = 0; at < whole; at += CHUNK_BYTES) yield all.subarray(at, at + CHUNK_BYTES);
        pending = whole < all.length ? [all.subarray(whole)] : [];
        size = all.length - whole;
      }
    }
    if (size > 0) yield Buffer.concat(pending, size);
    return;
  }
  const fh = await open(path, 'r');
  try {
    for (;;) {
      // whole chunks (a short read only at the end), so every chunk but the last starts on a sector
      const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      let filled = 0;
      for (let n = -1; n !== 0 && filled < CHUNK_BYTES; filled += n) n = (await fh.read(chunk, filled, CHUNK_BYTES - filled, null)).bytesRead;
      if (filled === 0) return;
      yield chunk.subarray(0, filled);
      if (filled < CHUNK_BYTES) return;
    }
  } finally {
    await fh.close();
  }
}

async function writeCommand(address: string, flags: CommonFlags & { in?: string; offset: string; stats?: boolean }): Promise<void> {
  const target = parseAoeAddress(address);
  const offset = parseBytes('--offset', flags.offset, SECTOR_SIZE);
  if (flags.in === undefined || flags.in === '') throw usageError('option --in', flags.in ?? '', 'a file to write to the target, or - for standard input; the option is required');
  let inputSize: number | undefined;
  if (flags.in !== '-') {
    try {
      const st = await stat(flags.in);
      if (!st.isFile()) throw new Error('not a regular file');
      inputSize = st.size;
    } catch (err) {
      throw usageError('option --in', flags.in, 'a readable regular file, or - for standard input', (err as NodeJS.ErrnoException).code ?? (err as Error).message);
    }
  }
  const aoe = openInitiator(flags, target);
  try {
    const device = await aoe.connect();
    const size = device.identity.sectors * SECTOR_SIZE;
    if (inputSize !== undefined && offset + inputSize > size) {
      throw usageError('option --in', flags.in, `at most ${Math.max(0, size - offset)} bytes (e${target.shelf}.${target.slot} holds ${size} bytes, writing from --offset ${offset})`, `${inputSize} bytes`);
    }
    const started = process.hrtime.bigint();
    let at = offset;
    const pending: Promise<void>[] = [];
    for await (const chunk of inputChunks(flags.in)) {
      let data = chunk;
      if (data.length % SECTOR_SIZE !== 0) {
        // the input ends inside a sector: keep the rest of that sector as the target has it
        const whole = data.length - (data.length % SECTOR_SIZE);
        const tail = await aoe.read((at + whole) / SECTOR_SIZE, 1);
        data.copy(tail, 0, whole);
        data = Buffer.concat([data.subarray(0, whole), tail]);
      }
      const done = aoe.write(at / SECTOR_SIZE, data);
      done.catch(() => undefined); // awaited below
      pending.push(done);
      at += chunk.length;
      if (pending.length >= CHUNKS_IN_FLIGHT) await pending.shift();
    }
    await Promise.all(pending);
    await aoe.flush();
    if (flags.stats) reportStats('wrote', at - offset, started, aoe);
  } finally {
    aoe.close();
  }
}

/** Registers `diskless aoe discover|identify|read|write|mask`. */
export function registerAoeCommand(program: Command): void {
  const aoe = program.command('aoe').description("the project's ATA over Ethernet initiator: discover, identify, read, write, mask lists (needs root)");

  addCommonOptions(aoe.command('discover').description('broadcast Query Config and list the targets that answer'))
    .option('--wait-ms <ms>', 'how long to collect answers', String(DEFAULT_AOE_DISCOVER_MS))
    .option('--json', 'one JSON array instead of lines', false)
    .action(async (flags: CommonFlags & { waitMs: string; json: boolean }) => {
      const waitMs = parseInteger('--wait-ms', flags.waitMs, 0, 3_600_000);
      const initiator = openInitiator(flags);
      try {
        const found = await initiator.discover({ waitMs });
        process.stdout.write(flags.json ? `${JSON.stringify(found.map(targetJson))}\n` : found.map((t) => `${describeTarget(t)}\n`).join(''));
      } finally {
        initiator.close();
      }
    });

  addCommonOptions(aoe.command('identify').description('Query Config and IDENTIFY DEVICE of one target').argument('<target>', 'eSHELF.SLOT, e.g. e1.0'))
    .option('--json', 'one JSON object instead of lines', false)
    .action(async (address: string, flags: CommonFlags & { json: boolean }) => {
      const initiator = openInitiator(flags, parseAoeAddress(address));
      try {
        const d = deviceJson(await initiator.connect());
        const text = flags.json
          ? `${JSON.stringify(d)}\n`
          : `${d.target} at ${d.mac}\nmodel     ${d.model}\nserial    ${d.serial}\nfirmware  ${d.firmware}\nsectors   ${d.sectors} (${d.bytes} bytes)\nlba48     ${d.lba48 ? 'yes' : 'no'}\nbuffers   ${d.bufferCount}\nsectors per frame ${d.sectorCount} (using ${d.sectorsPerCommand}, window ${d.window})\nconfig    ${JSON.stringify(d.config)}\n`;
        process.stdout.write(text);
      } finally {
        initiator.close();
      }
    });

  addCommonOptions(aoe.command('read').description('read a byte range of a target to a file or standard output').argument('<target>', 'eSHELF.SLOT'))
    .option('--offset <bytes>', 'first byte to read', '0')
    .option('--length <bytes>', 'bytes to read (default: to the end)')
    .option('--out <file>', 'where to write, - for standard output', '-')
    .option('--stats', 'print bytes, seconds and MB/s to standard error', false)
    .action(readCommand);

  addCommonOptions(aoe.command('write').description('write a file (or standard input) to a target, then FLUSH CACHE').argument('<target>', 'eSHELF.SLOT'))
    .option('--in <file>', 'what to write, - for standard input (required)')
    .option('--offset <bytes>', 'where to start, a multiple of 512', '0')
    .option('--stats', 'print bytes, seconds and MB/s to standard error', false)
    .action(writeCommand);

  addCommonOptions(aoe.command('mask').description("read a target's Mac Mask List, or edit it (deletions first, then additions)").argument('<target>', 'eSHELF.SLOT'))
    .option('--add <macs>', 'MAC addresses to add, comma-separated')
    .option('--delete <macs>', 'MAC addresses to delete, comma-separated')
    .action(async (address: string, flags: CommonFlags & { add?: string; delete?: string }) => {
      const target = parseAoeAddress(address);
      const add = flags.add === undefined ? [] : parseMacList('--add', flags.add);
      const del = flags.delete === undefined ? [] : parseMacList('--delete', flags.delete);
      const initiator = openInitiator(flags, target);
      try {
        const list = add.length + del.length > 0 ? await initiator.editMaskList({ add, delete: del }) : await initiator.readMaskList();
        process.stdout.write(list.map((m) => `${macToString(m)}\n`).join(''));
      } finally {
        initiator.close();
      }
    });
}
