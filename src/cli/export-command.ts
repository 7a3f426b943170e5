import type { Command } from 'commander';
import { constants as fsc } from 'node:fs';
import { open, readFile, realpath, stat, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { isIP } from 'node:net';
import type { LevelWithSilent } from 'pino';
import { DisklessError } from '../errors/index.js';
import { createLogger } from '../observe/logger.js';
import { Metrics } from '../observe/metrics.js';
import { IscsiServer } from '../services/iscsi/iscsi-server.js';
import { StaticTargetResolver } from '../services/iscsi/static-target-resolver.js';
import type { ChapCredentials } from '../services/iscsi/target-resolver.js';
import { FileBlockDevice, type WarnLog } from '../store/file/file-block-device.js';
import { DirectFileBlockDevice } from '../store/file/direct-file-block-device.js';
import { directIo, type DirectIo, type DirectIoAlignment } from '../store/file/direct-io.js';
import { attachReservationFile } from '../services/iscsi/unit-state.js';
import type { BlockDevice } from '../store/block-device.js';
import type { StorageDriver } from '../store/storage-driver.js';
import { describeStorage, openStorageDriver, type StorageChoice } from '../control/storage-choice.js';
import { addStorageOptions, assertPoolExists, namesStorage, storageChoiceFromFlags, type StorageFlags } from './volume-driver.js';
import { parseVolumeOrSnapshot } from './volume-format.js';
import { registerExportAoe } from './export-aoe-command.js';

/** Everything `diskless export iscsi` needs, parsed and checked. */
export interface ExportIscsiOptions {
  /** The file or block device, or with `storage` the volume (`NAME` or `NAME@SNAP`). */
  readonly file: string;
  /** Serve a volume of this storage instead of a file (`--pool`, `--zfs`). */
  readonly storage?: StorageChoice;
  readonly iqn: string;
  readonly address: string;
  /** 0 picks a free port (printed on stdout). */
  readonly port: number;
  readonly lun: number;
  readonly chap?: ChapCredentials;
  readonly mutualChap?: ChapCredentials;
  readonly readOnly: boolean;
  readonly blockSize: number;
  readonly logLevel: LevelWithSilent;
  /** Where persistent reservations are kept; default `<FILE>.reservations.json` for regular files, none (memory only) for block devices. */
  readonly reservations?: string;
}

export function usage(option: string, value: string, allowed: string, why?: string): never {
  const shown = option === '--chap' || option === '--mutual' ? maskSecret(value) : JSON.stringify(value);
  throw new DisklessError('USAGE', `option ${option}: value ${shown} is not allowed${why ? ` (${why})` : ''}; allowed: ${allowed}`, { field: option, value: option === '--chap' || option === '--mutual' ? maskSecret(value) : value, allowed });
}

/** Never print a secret back: `user:<n characters>`. */
function maskSecret(value: string): string {
  const i = value.indexOf(':');
  return i < 0 ? `"<${value.length} characters>"` : JSON.stringify(`${value.slice(0, i)}:<${value.length - i - 1} characters>`);
}

/**
 * An iSCSI name (RFC 7143 §4.2.7): `iqn.YYYY-MM.reversed.domain[:anything]`, `eui.` + 16 hex
 * digits, or `naa.` + 16 or 32 hex digits; at most 223 bytes, lower case (names are
 * compared after stringprep, which folds case: we require the folded form).
 */
export function parseIqn(value: string): string {
  const allowed = 'iqn.YYYY-MM.reversed.domain[:name] (lower case, at most 223 bytes), eui.<16 hex digits> or naa.<16 or 32 hex digits>';
  if (Buffer.byteLength(value, 'utf8') > 223) usage('--iqn', value, allowed, 'longer than 223 bytes');
  if (/^iqn\.\d{4}-(0[1-9]|1[0-2])\.[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[a-z0-9.:_-]+)?$/.test(value)) return value;
  if (/^eui\.[0-9A-F]{16}$/i.test(value) || /^naa\.([0-9A-F]{16}|[0-9A-F]{32})$/i.test(value)) return value;
  return usage('--iqn', value, allowed);
}

/** `IP:PORT` with an IPv4 address or a bracketed IPv6 address; port 0..65535 (0 = any free port). */
export function parseListen(value: string): { address: string; port: number } {
  const allowed = 'IPv4:PORT or [IPv6]:PORT, port 0-65535 (0 picks a free port)';
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  if (!m) return usage('--listen', value, allowed);
  const address = m[1] ?? m[2]!;
  if (isIP(address) !== (m[1] !== undefined ? 6 : 4)) return usage('--listen', value, allowed, `${address} is not an IP${m[1] !== undefined ? 'v6' : 'v4'} address`);
  const port = Number(m[3]);
  if (port > 65535) return usage('--listen', value, allowed, 'port above 65535');
  return { address, port };
}

/** A LUN number, 0..255 (peripheral device addressing, SAM-5 §4.7.7.1). */
export function parseLun(value: string): number {
  if (!/^\d{1,3}$/.test(value) || Number(value) > 255) return usage('--lun', value, 'an integer 0-255');
  return Number(value);
}

/**
 * `USER:SECRET` for CHAP. RFC 7143 §12.1.3 wants secrets of at least 96 bits (12 bytes) when
 * they are not random binary, and the CHAP_R/CHAP_C encoding caps practical secrets at 255
 * bytes; the user name is the CHAP_N the initiator sends (1-255 bytes, no ':').
 */
export function parseChap(option: '--chap' | '--mutual', value: string): ChapCredentials {
  const allowed = 'USER:SECRET, USER 1-255 bytes, SECRET 12-255 bytes (RFC 7143 §12.1.3)';
  const i = value.indexOf(':');
  if (i <= 0) return usage(option, value, allowed, 'no USER: before the secret');
  const username = value.slice(0, i);
  const secret = value.slice(i + 1);
  if (Buffer.byteLength(username) > 255) return usage(option, value, allowed, 'user name longer than 255 bytes');
  const n = Buffer.byteLength(secret);
  if (n < 12) return usage(option, value, allowed, `secret is ${n} bytes, shorter than 12`);
  if (n > 255) return usage(option, value, allowed, `secret is ${n} bytes, longer than 255`);
  return { username, secret };
}

/** Checks the whole command line; throws USAGE naming the first bad option. */
export function parseExportOptions(file: string, opts: { iqn?: string; listen?: string; lun: string; chap?: string; mutual?: string; readOnly: boolean; blockSize: string; logLevel: string; reservations?: string }): ExportIscsiOptions {
  if (opts.iqn === undefined) usage('--iqn', '', 'an iSCSI name; the option is required');
  if (opts.listen === undefined) usage('--listen', '', 'IP:PORT; the option is required');
  const iqn = parseIqn(opts.iqn);
  const { address, port } = parseListen(opts.listen);
  const lun = parseLun(opts.lun);
  const chap = opts.chap === undefined ? undefined : parseChap('--chap', opts.chap);
  const mutualChap = opts.mutual === undefined ? undefined : parseChap('--mutual', opts.mutual);
  if (mutualChap && !chap) usage('--mutual', opts.mutual!, '--mutual together with --chap (mutual CHAP answers the initiator after one-way CHAP)', 'without --chap');
  if (mutualChap && chap && mutualChap.secret === chap.secret) {
    usage('--mutual', opts.mutual!, 'a secret different from the --chap secret', 'same secret as --chap: RFC 7143 §12.1.3 forbids one secret for both directions');
  }
  if (opts.blockSize !== '512' && opts.blockSize !== '4096') usage('--block-size', opts.blockSize, '512 or 4096');
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!levels.includes(opts.logLevel)) usage('--log-level', opts.logLevel, levels.join(', '));
  if (opts.reservations === '') usage('--reservations', '', 'a file path');
  return { file, iqn, address, port, lun, ...(opts.reservations !== undefined ? { reservations: opts.reservations } : {}), ...(chap ? { chap } : {}), ...(mutualChap ? { mutualChap } : {}), readOnly: opts.readOnly, blockSize: Number(opts.blockSize), logLevel: opts.logLevel as LevelWithSilent };
}

/** The size of a regular file or block device in bytes. */
async function deviceSize(file: string): Promise<number> {
  const st = await stat(file);
  if (st.isFile()) return st.size;
  if (st.isBlockDevice()) {
    // stat reports 0 for block devices; sysfs has the size in 512-byte sectors.
    const name = basename(await realpath(file));
    const sectors = await readFile(`/sys/class/block/${name}/size`, 'utf8');
    return Number(sectors.trim()) * 512;
  }
  throw new DisklessError('USAGE', `argument FILE: ${JSON.stringify(file)} is not allowed; allowed: a regular file or a block device`, { field: 'FILE', value: file, allowed: 'regular file or block device' });
}

/**
 * Opens FILE as a block device: the whole file, rounded down to whole blocks. A missing file,
 * an empty one or one smaller than a block is a USAGE error naming it. With `direct`, reads
 * and writes use O_DIRECT (DirectFileBlockDevice) and the block size is raised to the file's
 * direct I/O alignment when that is larger; a file system without direct I/O is a USAGE
 * error naming --direct.
 */
export async function openExportDevice(file: string, readOnly: boolean, blockSize: number, log?: WarnLog, direct = false): Promise<BlockDevice> {
  let size: number;
  try {
    size = await deviceSize(file);
  } catch (err) {
    if (err instanceof DisklessError) throw err;
    throw new DisklessError('USAGE', `argument FILE: ${JSON.stringify(file)} is not allowed (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); allowed: an existing regular file or block device`, { field: 'FILE', value: file, allowed: 'existing file' }, { cause: err });
  }
  const opened = direct ? await openDirect(file, readOnly) : undefined;
  try {
    if (opened) blockSize = Math.max(blockSize, opened.alignment.offset);
    const usable = Math.floor(size / blockSize) * blockSize;
    if (usable === 0) throw new DisklessError('USAGE', `argument FILE: ${JSON.stringify(file)} is not allowed (${size} bytes); allowed: at least one ${blockSize}-byte block`, { field: 'FILE', value: file, allowed: `>= ${blockSize} bytes` });
    const handle = await openFile(file, readOnly);
    const device = new FileBlockDevice(handle, usable, blockSize, readOnly, file, log ? { log } : {}); // log: why unmap (thin provisioning) is off, if it is
    return opened ? new DirectFileBlockDevice(opened.handle, device, opened.alignment, opened.io) : device;
  } catch (err) {
    await opened?.handle.close();
    throw err;
  }
}

/** FILE opened with O_DIRECT, its alignment and the native helpers; USAGE errors name --direct. */
async function openDirect(file: string, readOnly: boolean): Promise<{ handle: FileHandle; alignment: DirectIoAlignment; io: DirectIo }> {
  const io = directIo();
  if (!io) throw new DisklessError('USAGE', 'option --direct is not allowed: the native addon (alignedBuffer, directIoAlignment) is not built; allowed: after `make build`', { field: '--direct', value: true, allowed: 'with the native addon' });
  let handle: FileHandle;
  try {
    handle = await open(file, (readOnly ? fsc.O_RDONLY : fsc.O_RDWR) | fsc.O_DIRECT);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw openFailure(file, readOnly, err);
    throw new DisklessError('USAGE', `option --direct is not allowed for ${JSON.stringify(file)}: its file system refuses O_DIRECT (EINVAL); allowed: a file on a file system with direct I/O (ext4, xfs, btrfs) or a block device`, { field: '--direct', value: file, allowed: 'file system with direct I/O' }, { cause: err });
  }
  // Kernels and file systems that do not report it get the largest alignment any of them asks.
  const alignment = io.directIoAlignment(handle.fd) ?? { memory: MAX_DIRECT_ALIGNMENT, offset: MAX_DIRECT_ALIGNMENT };
  try {
    if (alignment.offset > MAX_DIRECT_ALIGNMENT) {
      throw new DisklessError('USAGE', `option --direct is not allowed for ${JSON.stringify(file)}: direct I/O there needs ${alignment.offset}-byte alignment; allowed: at most ${MAX_DIRECT_ALIGNMENT}`, { field: '--direct', value: file, allowed: `alignment <= ${MAX_DIRECT_ALIGNMENT}` });
    }
    // Some file systems accept O_DIRECT at open and refuse the reads: try one now, not at the first client's.
    await handle.read(io.alignedBuffer(alignment.offset, alignment.memory), 0, alignment.offset, 0).catch((err: NodeJS.ErrnoException) => {
      throw new DisklessError('USAGE', `option --direct is not allowed for ${JSON.stringify(file)}: a direct read failed (${err.code ?? err.message}); allowed: a file on a file system with direct I/O (ext4, xfs, btrfs) or a block device`, { field: '--direct', value: file, allowed: 'file system with direct I/O' }, { cause: err });
    });
  } catch (err) {
    await handle.close();
    throw err;
  }
  return { handle, alignment, io };
}

/** The largest block size a volume has (and the direct I/O alignment assumed when none is reported). */
const MAX_DIRECT_ALIGNMENT = 4096;

/** FILE opened for the export; a failure is a USAGE error naming FILE and why. */
async function openFile(file: string, readOnly: boolean): Promise<FileHandle> {
  try {
    return await open(file, readOnly ? fsc.O_RDONLY : fsc.O_RDWR);
  } catch (err) {
    throw openFailure(file, readOnly, err);
  }
}

/** The USAGE error for a FILE that cannot be opened, naming it and the errno. */
function openFailure(file: string, readOnly: boolean, err: unknown): DisklessError {
  return new DisklessError('USAGE', `argument FILE: cannot open ${JSON.stringify(file)} ${readOnly ? 'read-only' : 'read-write'} (${(err as NodeJS.ErrnoException).code ?? ''}); allowed: a file this user can ${readOnly ? 'read' : 'read and write (or pass --read-only)'}`, { field: 'FILE', value: file, allowed: 'accessible file' }, { cause: err });
}

/** What is being served, opened: the device, what to call it, and what to close afterwards. */
export interface OpenedExport {
  readonly device: BlockDevice;
  readonly readOnly: boolean;
  readonly label: string;
  readonly reservations: string | undefined;
  readonly driver?: StorageDriver;
}

/**
 * A volume (or, read-only, one of its snapshots) of the chosen storage. Its block size is the
 * volume's; persistent reservations stay in memory unless --reservations names a file.
 */
/** What `openExport` needs: the FILE or VOLUME argument and how to open it. */
export type ExportSource = Pick<ExportIscsiOptions, 'file' | 'storage' | 'readOnly' | 'blockSize' | 'reservations'> & {
  /** Read and write FILE with O_DIRECT (files only: a volume has its own store). */
  readonly direct?: boolean;
};

async function openExportVolume(o: ExportSource, storage: StorageChoice, log: WarnLog): Promise<OpenedExport> {
  const { volume, snapshot } = parseVolumeOrSnapshot('argument VOLUME', o.file);
  const driver = await openStorageDriver(storage, log);
  try {
    const readOnly = o.readOnly || snapshot !== undefined;
    const device = await driver.open(volume, { readOnly, ...(snapshot === undefined ? {} : { snapshot }) });
    return { device, readOnly, label: `volume ${o.file} of ${describeStorage(storage)}`, reservations: o.reservations, driver };
  } catch (err) {
    await driver.close();
    throw err;
  }
}

/** Opens FILE, or with `storage` the volume (or read-only snapshot) named by `file`. */
export async function openExport(o: ExportSource, log: WarnLog): Promise<OpenedExport> {
  if (o.storage !== undefined) {
    if (o.direct) usage('--direct', 'true', 'only with a FILE: a volume is read through its store, which checks what it reads', `${o.file} is a volume`);
    return openExportVolume(o, o.storage, log);
  }
  const device = await openExportDevice(o.file, o.readOnly, o.blockSize, log, o.direct ?? false);
  const reservations = o.reservations ?? ((await stat(o.file)).isFile() ? `${o.file}.reservations.json` : undefined);
  return { device, readOnly: o.readOnly, label: o.file, reservations };
}

/**
 * Serves one file, or one volume of a pool, as one iSCSI target until `signal` aborts
 * (SIGINT/SIGTERM from the CLI). Prints `listening on IP:PORT` (the bound port, useful with
 * port 0) once it accepts logins.
 */
export async function exportIscsi(o: ExportIscsiOptions, signal: AbortSignal, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const log = createLogger({ level: o.logLevel });
  const opened = await openExport(o, log);
  const { device, readOnly } = opened;
  const release = async () => {
    await device.close();
    await opened.driver?.close();
  };
  try {
    if (opened.reservations !== undefined) await attachReservationFile(device, opened.reservations);
  } catch (err) {
    await release();
    throw err;
  }
  const server = new IscsiServer({
    address: o.address,
    port: o.port,
    log,
    metrics: new Metrics(),
    targets: new StaticTargetResolver([
      { name: o.iqn, device, readOnly, lun: o.lun, ...(o.chap ? { chap: o.chap } : {}), ...(o.mutualChap ? { mutualChap: o.mutualChap } : {}) },
    ]),
  });
  try {
    await server.start();
    const host = o.address.includes(':') ? `[${o.address}]` : o.address;
    out.write(`exporting ${opened.label} (${device.size} bytes, ${device.blockSize}-byte blocks${readOnly ? ', read-only' : ''}${device.capabilities.unmap ? ', thin provisioned' : ''}) as ${o.iqn} LUN ${o.lun}${o.chap ? ', CHAP' : ''}${o.mutualChap ? ' + mutual' : ''}\nlistening on ${host}:${server.port}\n`);
    if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    out.write('stopping\n');
  } finally {
    await server.stop();
    if (!readOnly) await device.flush().catch(() => undefined);
    await release();
  }
}

/**
 * The storage an `export` command line names (`--pool`, `--zfs`: its argument is a volume), or
 * undefined for a FILE, after the checks both `export` commands make: no `--block-size` with a
 * volume (it has its own), no `--mirror`/`--capacity` without `--pool`.
 */
export async function exportStorage(flags: StorageFlags & { blockSize: string }, cmd: Command): Promise<StorageChoice | undefined> {
  if (namesStorage(flags)) {
    if (cmd.getOptionValueSource('blockSize') !== 'default') usage('--block-size', flags.blockSize, 'no --block-size with --pool or --zfs: a volume keeps the block size it was created with');
    const storage = await storageChoiceFromFlags(flags);
    await assertPoolExists(storage, flags);
    return storage;
  }
  for (const [option, value] of [['--mirror', flags.mirror], ['--capacity', flags.capacity]] as const) {
    if (value !== undefined) usage(option, value, `${option} together with --pool DIR (serving a volume of that pool)`);
  }
  return undefined;
}

/** Runs `serve` until SIGINT or SIGTERM aborts its signal (the foreground `export` commands). */
export async function untilSignal(serve: (signal: AbortSignal) => Promise<void>): Promise<void> {
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await serve(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Registers `diskless export iscsi FILE|VOLUME ...`. */
export function registerExportCommand(program: Command): void {
  const exp = program.command('export').description('serve one file, block device or volume on its own, without the boot servers');
  registerExportAoe(exp);
  const iscsi = exp
    .command('iscsi')
    .description('serve FILE (or with --pool/--zfs a VOLUME, or read-only VOLUME@SNAP) as an iSCSI target in the foreground until SIGINT/SIGTERM (like a one-line tgt)')
    .argument('<file>', 'regular file or block device to export; with --pool or --zfs a volume name, or NAME@SNAP (read-only)')
    .option('--iqn <iqn>', 'target name, e.g. iqn.2026-11.io.example:disk1 (required)')
    .option('--listen <ip:port>', 'portal address, e.g. 127.0.0.1:3260 or [::1]:3260 (required; port 0 picks one)')
    .option('--lun <n>', 'LUN number 0-255', '0')
    .option('--chap <user:secret>', 'require one-way CHAP; secret 12-255 bytes')
    .option('--mutual <user:secret>', 'also authenticate the target to the initiator (mutual CHAP); needs --chap and a different secret')
    .option('--read-only', 'refuse writes (DATA PROTECT / WRITE PROTECTED)', false)
    .option('--block-size <bytes>', 'logical block size of a FILE, 512 or 4096 (a volume has its own)', '512')
    .option('--reservations <file>', 'keep persistent reservations in this JSON file (default: FILE.reservations.json for a regular file; memory only for a volume)')
    .option('--log-level <level>', 'log level on stderr', 'warn');
  addStorageOptions(iscsi, false).action(
    async (file: string, opts: StorageFlags & { iqn?: string; listen?: string; lun: string; chap?: string; mutual?: string; readOnly: boolean; blockSize: string; logLevel: string; reservations?: string }, cmd: Command) => {
      const parsed = parseExportOptions(file, opts);
      const storage = await exportStorage(opts, cmd);
      await untilSignal((signal) => exportIscsi(storage ? { ...parsed, storage } : parsed, signal));
    },
  );
}
