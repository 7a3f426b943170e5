/**
 * `diskless volume …`: the storage driver from the command line, as a `zfs` user expects it
 * (create, import, snapshot, clone, rollback, promote, destroy, hold/release, list, send,
 * receive, scrub, info). Every subcommand opens the driver the storage options pick
 * (volume-driver.ts), does one thing and closes it. Exit status 0 ok, 1 the operation failed
 * (`error STORE_…: …` on stderr), 2 bad usage.
 */
import { constants as fsc } from 'node:fs';
import { open, rename, stat, unlink } from 'node:fs/promises';
import { once } from 'node:events';
import type { Command } from 'commander';
import { DisklessError, isDisklessError } from '../errors/index.js';
import type { SnapshotInfo, StorageDriver } from '../store/storage-driver.js';
import { addStorageOptions, withStorage, type StorageFlags } from './volume-driver.js';
import {
  formatProperties,
  formatScrub,
  formatTable,
  parseSizeOption,
  parseSnapshotRef,
  parseVolumeOrSnapshot,
  snapshotProperties,
  snapshotRow,
  SNAPSHOT_COLUMNS,
  usageError,
  volumeProperties,
  volumeRow,
  VOLUME_COLUMNS,
} from './volume-format.js';

const out = (text: string) => process.stdout.write(text);

/** The storage flags of the `volume` group, wherever on the line they were given. */
function flagsOf(cmd: Command): StorageFlags {
  return cmd.optsWithGlobals<StorageFlags>();
}

function parseBlockSize(value: string | undefined): 512 | 4096 | undefined {
  if (value === undefined) return undefined;
  if (value !== '512' && value !== '4096') throw usageError('option --block-size', value, '512 or 4096');
  return Number(value) as 512 | 4096;
}

/** `list -t`: volume, snapshot (snap) or all; a comma list like zfs's. */
export function parseListType(value: string): { volumes: boolean; snapshots: boolean } {
  const allowed = 'volume, snapshot, all (or a comma list: volume,snapshot)';
  let volumes = false;
  let snapshots = false;
  for (const t of value.split(',')) {
    if (t === 'volume' || t === 'vol') volumes = true;
    else if (t === 'snapshot' || t === 'snap') snapshots = true;
    else if (t === 'all') volumes = snapshots = true;
    else throw usageError('option -t', value, allowed);
  }
  return { volumes, snapshots };
}

/** `send -i BASE`: `@snap`, `snap`, or `volume@snap` of the volume being sent. */
function parseIncrementalBase(value: string, volume: string): string {
  const at = value.indexOf('@');
  const base = at < 0 ? value : value.slice(at + 1);
  if (base === '' || (at > 0 && value.slice(0, at) !== volume) || base.includes('@')) throw usageError('option -i', value, `an earlier snapshot of ${volume}: SNAP, @SNAP or ${volume}@SNAP`);
  return base;
}

async function lookupSnapshot(driver: StorageDriver, volume: string, snapshot: string): Promise<SnapshotInfo> {
  const found = (await driver.listSnapshots(volume)).find((s) => s.name === snapshot);
  if (!found) throw new DisklessError('STORE_NOT_FOUND', `cannot find snapshot ${volume}@${snapshot}`, { volume, snapshot });
  return found;
}

/**
 * Writes every chunk of `stream` to `target`, honouring backpressure. When the reader goes
 * away (EPIPE: `send | head`) it stops reading the stream and rejects with OUTPUT_CLOSED.
 */
async function pump(stream: AsyncIterable<Buffer>, target: NodeJS.WritableStream): Promise<number> {
  let failure: Error | undefined;
  const onError = (err: Error) => (failure = err);
  target.on('error', onError);
  let bytes = 0;
  const check = () => {
    if (!failure) return;
    const code = (failure as NodeJS.ErrnoException).code;
    if (code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED') throw new DisklessError('OUTPUT_CLOSED', `standard output closed after ${bytes} bytes of the stream: the reader got an incomplete stream`, { bytes }, { cause: failure });
    throw failure;
  };
  try {
    for await (const chunk of stream) {
      check();
      bytes += chunk.length;
      if (!target.write(chunk)) await Promise.race([once(target, 'drain'), new Promise((resolve) => target.once('error', resolve))]);
      check();
    }
    // A write to a pipe is synchronous on Linux and reports EPIPE a tick later: wait for it, so a reader that left during the last chunk is not taken for a complete transfer.
    await new Promise((resolve) => setImmediate(resolve));
    check();
  } finally {
    target.off('error', onError);
  }
  return bytes;
}

/**
 * `send` into FILE: written under a temporary name beside it, synced, then renamed, so FILE
 * is either a whole stream or untouched.
 */
async function sendToFile(stream: AsyncIterable<Buffer>, file: string): Promise<void> {
  const tmp = `${file}.partial-${process.pid}`;
  let fh;
  try {
    fh = await open(tmp, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, 0o600);
  } catch (err) {
    throw usageError('option -o', file, 'a path in a writable directory', (err as NodeJS.ErrnoException).code);
  }
  try {
    let pos = 0;
    for await (const chunk of stream) {
      await fh.write(chunk, 0, chunk.length, pos);
      pos += chunk.length;
    }
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, file);
  } catch (err) {
    await fh?.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

async function list(driver: StorageDriver, name: string | undefined, o: { type: string; scripted: boolean; parsable: boolean }): Promise<void> {
  const type = parseListType(o.type);
  const volumes = name === undefined ? await driver.list() : [await driver.info(name)];
  const wide = type.volumes;
  const rows: string[][] = [];
  for (const v of volumes) {
    if (type.volumes) rows.push(volumeRow(v, o.parsable));
    if (type.snapshots) for (const s of await driver.listSnapshots(v.name)) rows.push(snapshotRow(s, o.parsable, wide));
  }
  const header = wide ? VOLUME_COLUMNS : SNAPSHOT_COLUMNS;
  out(formatTable(header, rows, o.scripted, header.map((_, i) => i > 0 && i < 4)));
}

async function info(driver: StorageDriver, ref: string, o: { scripted: boolean; parsable: boolean }): Promise<void> {
  const { volume, snapshot } = parseVolumeOrSnapshot('argument NAME', ref);
  if (snapshot !== undefined) {
    out(formatProperties(snapshotProperties(await lookupSnapshot(driver, volume, snapshot), o.parsable), o.scripted));
    return;
  }
  const v = await driver.info(volume);
  out(formatProperties(volumeProperties(v, await driver.listSnapshots(volume), o.parsable), o.scripted));
}

async function send(driver: StorageDriver, ref: string, o: { incremental?: string; token?: string; output?: string }): Promise<void> {
  const { volume, snapshot } = parseSnapshotRef('argument NAME@SNAP', ref);
  if (o.incremental !== undefined && o.token !== undefined) throw usageError('option -t', o.token, 'either -t TOKEN (resume) or -i BASE (incremental), not both: the token already says what to send');
  if (o.token === '') throw usageError('option -t', '', 'the resume token `receive` printed');
  if (o.output === undefined && process.stdout.isTTY) {
    throw usageError('standard output', 'a terminal', 'a pipe or a file: redirect it (| diskless volume receive NAME, > FILE) or give -o FILE', 'a send stream is binary');
  }
  const base = o.incremental === undefined ? undefined : parseIncrementalBase(o.incremental, volume);
  const stream = driver.send(volume, snapshot, { ...(base === undefined ? {} : { base }), ...(o.token === undefined ? {} : { resumeToken: o.token }) });
  if (o.output !== undefined) await sendToFile(stream, o.output);
  else await pump(stream, process.stdout);
}

async function receive(driver: StorageDriver, name: string, o: { resumable: boolean; force: boolean; abort: boolean }): Promise<void> {
  if (o.abort) {
    if (o.resumable || o.force) throw usageError('option -A', name, '-A NAME alone (it throws away the partial receive; -s and -F do not apply)');
    await driver.abortReceive(name);
    out(`aborted the partial receive into ${name}\n`);
    return;
  }
  if (process.stdin.isTTY) throw usageError('standard input', 'a terminal', 'a send stream on a pipe or from a file (diskless volume send … | diskless volume receive NAME, or < FILE)');
  try {
    const s = await driver.receive(name, process.stdin, { resumable: o.resumable, force: o.force });
    out(`received ${s.volume}@${s.name}\n`);
  } catch (err) {
    if (isDisklessError(err, 'STORE_RECEIVE_INTERRUPTED') && typeof err.data.resumeToken === 'string') {
      // The token alone on stdout (for $(…)), the way to use it on stderr.
      out(`${err.data.resumeToken}\n`);
      process.stderr.write(`receive into ${name} interrupted; resume it with: diskless volume send -t ${err.data.resumeToken} VOLUME@SNAP | diskless volume receive -s ${name}\n`);
    }
    throw err;
  }
}

async function scrub(driver: StorageDriver, name: string | undefined, parsable: boolean): Promise<void> {
  const report = await driver.scrub(name);
  out(formatScrub(report, parsable));
  if (report.unrecoverable > 0) {
    throw new DisklessError('STORE_CORRUPT', `scrub of ${name ?? 'the pool'} found ${report.unrecoverable} block(s) with no good copy: reads of them fail with a medium error`, { ...report });
  }
}

async function importVolume(driver: StorageDriver, name: string, file: string, o: { size?: string; blockSize?: string }): Promise<void> {
  let st;
  try {
    st = await stat(file);
  } catch (err) {
    throw usageError('argument FILE', file, 'an existing raw disk image', (err as NodeJS.ErrnoException).code);
  }
  if (!st.isFile()) throw usageError('argument FILE', file, 'a regular file holding a raw disk image');
  const blockSize = parseBlockSize(o.blockSize);
  const size = o.size === undefined ? undefined : parseSizeOption('--size', o.size);
  const v = await driver.create(name, { from: file, ...(size === undefined ? {} : { size }), ...(blockSize === undefined ? {} : { blockSize }) });
  out(`imported ${file} as ${v.name} (${v.size} bytes)\n`);
}

/** Registers `diskless volume …`. */
export function registerVolumeCommand(program: Command): void {
  const volume = addStorageOptions(program.command('volume').description('manage volumes, snapshots and clones (like zfs): create, snapshot, clone, send | receive, scrub…'));
  // commander calls an action with (arguments…, options, command); the command carries the storage flags.
  const act = <A extends unknown[]>(fn: (driver: StorageDriver, ...args: A) => Promise<void>, newPool = false) =>
    async (...args: unknown[]) => {
      const cmd = args[args.length - 1] as Command;
      await withStorage(flagsOf(cmd), (driver) => fn(driver, ...(args.slice(0, -1) as A)), { newPool });
    };

  volume
    .command('create')
    .description('create an empty thin volume')
    .argument('<name>', 'volume name: letters, digits, . _ - (1-63)')
    .requiredOption('--size <size>', 'capacity, e.g. 64MiB, 10G (a multiple of the block size)')
    .option('-b, --block-size <bytes>', 'logical block size, 512 or 4096', '512')
    .action(
      act(async (driver, name: string, o: { size: string; blockSize: string }) => {
        const blockSize = parseBlockSize(o.blockSize)!;
        const size = parseSizeOption('--size', o.size);
        if (size % blockSize !== 0) throw usageError('option --size', o.size, `a multiple of the ${blockSize}-byte block size`);
        const v = await driver.create(name, { size, blockSize });
        out(`created ${v.name} (${v.size} bytes, ${v.blockSize}-byte blocks)\n`);
      }, true),
    );

  volume
    .command('import')
    .description('create a volume from a raw disk image (all-zero regions stay unallocated)')
    .argument('<name>', 'new volume name')
    .argument('<file>', 'raw disk image')
    .option('--size <size>', 'capacity, at least the image size (default: the image size rounded up to a block)')
    .option('-b, --block-size <bytes>', 'logical block size, 512 or 4096')
    .action(act((driver, name: string, file: string, o: { size?: string; blockSize?: string }) => importVolume(driver, name, file, o), true));

  volume
    .command('snapshot')
    .description('take a read-only point-in-time snapshot, in constant time')
    .argument('<name@snap>', 'volume and new snapshot name')
    .action(
      act(async (driver, ref: string) => {
        const { volume: v, snapshot } = parseSnapshotRef('argument NAME@SNAP', ref);
        await driver.snapshot(v, snapshot);
      }),
    );

  volume
    .command('clone')
    .description('create a writable volume sharing a snapshot\'s blocks, in constant time')
    .argument('<name@snap>', 'origin snapshot')
    .argument('<new>', 'new volume name')
    .action(
      act(async (driver, ref: string, name: string) => {
        const { volume: v, snapshot } = parseSnapshotRef('argument NAME@SNAP', ref);
        await driver.clone(v, snapshot, name);
      }),
    );

  volume
    .command('rollback')
    .description('discard every change since the snapshot')
    .argument('<name@snap>', 'snapshot to return to')
    .option('-r', 'also destroy the snapshots taken after it', false)
    .action(
      act(async (driver, ref: string, o: { r: boolean }) => {
        const { volume: v, snapshot } = parseSnapshotRef('argument NAME@SNAP', ref);
        await driver.rollback(v, snapshot, { destroyLater: o.r });
      }),
    );

  volume
    .command('promote')
    .description("make a clone independent of its origin (the origin's earlier snapshots move to it)")
    .argument('<name>', 'clone to promote')
    .action(act((driver, name: string) => driver.promote(name)));

  volume
    .command('destroy')
    .description('destroy a volume or one snapshot')
    .argument('<name>', 'NAME or NAME@SNAP')
    .option('-r', 'for a volume: also destroy its snapshots (never cloned or held ones)', false)
    .action(
      act(async (driver, ref: string, o: { r: boolean }) => {
        const { volume: v, snapshot } = parseVolumeOrSnapshot('argument NAME', ref);
        if (snapshot === undefined) return driver.destroy(v, { recursive: o.r });
        if (o.r) throw usageError('option -r', ref, '-r with a volume NAME (a snapshot has nothing under it)');
        return driver.destroySnapshot(v, snapshot);
      }),
    );

  for (const [verb, description] of [['hold', 'add a hold: a held snapshot cannot be destroyed'], ['release', 'remove a hold']] as const) {
    volume
      .command(verb)
      .description(description)
      .argument('<tag>', 'hold tag')
      .argument('<name@snap>', 'snapshot')
      .action(
        act(async (driver, tag: string, ref: string) => {
          const { volume: v, snapshot } = parseSnapshotRef('argument NAME@SNAP', ref);
          await (verb === 'hold' ? driver.hold(v, snapshot, tag) : driver.release(v, snapshot, tag));
        }),
      );
  }

  volume
    .command('list')
    .description('list volumes (NAME USED REFER WRITTEN ORIGIN) and/or snapshots (NAME USED REFER)')
    .argument('[name]', 'only this volume (and its snapshots with -t)')
    .option('-t <type>', 'volume, snapshot or all', 'volume')
    .option('-H', 'scripted: no header, tab-separated', false)
    .option('-p', 'exact byte counts instead of 1.50M', false)
    .action(act((driver, name: string | undefined, o: { t: string; H: boolean; p: boolean }) => list(driver, name, { type: o.t, scripted: o.H, parsable: o.p })));

  volume
    .command('info')
    .description('every property of a volume or snapshot, one per line')
    .argument('<name>', 'NAME or NAME@SNAP')
    .option('-H', 'scripted: tab-separated', false)
    .option('-p', 'exact byte counts', false)
    .action(act((driver, ref: string, o: { H: boolean; p: boolean }) => info(driver, ref, { scripted: o.H, parsable: o.p })));

  volume
    .command('send')
    .description('write a snapshot as a stream (full, incremental with -i, or resumed with -t) to stdout or -o FILE')
    .argument('<name@snap>', 'snapshot to send')
    .option('-i <base>', 'incremental: only what changed since this earlier snapshot (SNAP, @SNAP or NAME@SNAP)')
    .option('-t <token>', 'resume an interrupted transfer with the token the receiving side printed')
    .option('-o <file>', 'write the stream to FILE (whole or not at all) instead of stdout')
    .action(act((driver, ref: string, o: { i?: string; t?: string; o?: string }) => send(driver, ref, { ...(o.i === undefined ? {} : { incremental: o.i }), ...(o.t === undefined ? {} : { token: o.t }), ...(o.o === undefined ? {} : { output: o.o }) })));

  volume
    .command('receive')
    .alias('recv')
    .description('apply a send stream from stdin: a full stream creates NAME, an incremental one adds to it')
    .argument('<name>', 'volume to create or update')
    .option('-s', 'resumable: keep what arrived if the stream stops, and print the resume token', false)
    .option('-F', 'discard changes made to NAME since its latest snapshot first', false)
    .option('-A', 'abort: throw away a partial resumable receive into NAME', false)
    .action(act((driver, name: string, o: { s: boolean; F: boolean; A: boolean }) => receive(driver, name, { resumable: o.s, force: o.F, abort: o.A }), true));

  volume
    .command('scrub')
    .description('re-read every block of NAME (or the whole pool) against its checksum, heal bad copies, print the report; exit 1 if a block has no good copy')
    .argument('[name]', 'volume (default: the whole pool)')
    .option('-p', 'exact byte counts', false)
    .action(act((driver, name: string | undefined, o: { p: boolean }) => scrub(driver, name, o.p)));
}
