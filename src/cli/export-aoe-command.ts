import type { Command } from 'commander';
import { stat } from 'node:fs/promises';
import type { LevelWithSilent } from 'pino';
import { createLogger } from '../observe/logger.js';
import { Metrics } from '../observe/metrics.js';
import { AoeServer, AOE_SERVER_DEFAULTS } from '../services/aoe/aoe-server.js';
import { FileAoeStateStore, MemoryAoeStateStore } from '../services/aoe/aoe-state-store.js';
import { sectorsPerFrame } from '../wire/aoe/ata-command.js';
import { interfaceInfo } from '../net/open-raw-socket.js';
import type { StorageChoice } from '../control/storage-choice.js';
import { macToString } from '../wire/ethernet/ethernet-frame.js';
import { addStorageOptions, type StorageFlags } from './volume-driver.js';
import { exportStorage, openExport, untilSignal, usage } from './export-command.js';
import { parseInteger, parseMac } from './option-values.js';

/** Everything `diskless export aoe` needs, parsed and checked. */
export interface ExportAoeOptions {
  readonly file: string;
  readonly storage?: StorageChoice;
  readonly interfaces: readonly string[];
  readonly shelf: number;
  readonly slot: number;
  readonly allow: readonly string[];
  readonly readOnly: boolean;
  readonly blockSize: number;
  readonly syncWrites: boolean;
  /** Read and write FILE with O_DIRECT (like vblade -d). */
  readonly direct: boolean;
  readonly bufferCount: number;
  /** Where the config string, mask and reserve lists are kept; default `<FILE>.aoe.json` for a regular file, memory only for a volume. */
  readonly state?: string;
  readonly logLevel: LevelWithSilent;
}

interface RawFlags {
  iface?: string;
  shelf?: string;
  slot?: string;
  allow?: string;
  readOnly: boolean;
  blockSize: string;
  sync: boolean;
  direct: boolean;
  bufferCount: string;
  state?: string;
  logLevel: string;
}

/** Checks the command line; throws USAGE naming the first bad option. */
export function parseExportAoeOptions(file: string, f: RawFlags): ExportAoeOptions {
  if (f.iface === undefined || f.iface === '') usage('--iface', f.iface ?? '', 'interface names, comma-separated; the option is required (AoE is served only where you say)');
  const interfaces = [...new Set(f.iface.split(','))];
  for (const i of interfaces) if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(i)) usage('--iface', i, 'interface names of 1-15 characters (letters, digits, _ . : @ -)');
  const shelf = parseInteger('--shelf', f.shelf, 0, 65534);
  const slot = parseInteger('--slot', f.slot, 0, 254);
  const allow = f.allow === undefined ? [] : [...new Set(f.allow.split(',').map((m) => parseMac('--allow', m)))];
  if (allow.length > 184) usage('--allow', f.allow!, 'at most 184 MAC addresses (one Mac Mask List frame)');
  if (f.blockSize !== '512' && f.blockSize !== '4096') usage('--block-size', f.blockSize, '512 or 4096');
  const bufferCount = parseInteger('--buffer-count', f.bufferCount, 1, 65535);
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!levels.includes(f.logLevel)) usage('--log-level', f.logLevel, levels.join(', '));
  if (f.state === '') usage('--state', '', 'a file path');
  return { file, interfaces, shelf, slot, allow, readOnly: f.readOnly, blockSize: Number(f.blockSize), syncWrites: f.sync, direct: f.direct, bufferCount, ...(f.state === undefined ? {} : { state: f.state }), logLevel: f.logLevel as LevelWithSilent };
}

/**
 * Serves one file, or one volume of a pool, as one AoE target on the given interfaces until
 * `signal` aborts, like vblade. Prints what it serves and `serving eS.L on IFACE` per interface.
 */
export async function exportAoe(o: ExportAoeOptions, signal: AbortSignal, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const log = createLogger({ level: o.logLevel });
  for (const ifname of o.interfaces) interfaceInfo(ifname); // a missing interface fails before anything is opened
  const opened = await openExport({ file: o.file, readOnly: o.readOnly, blockSize: o.blockSize, direct: o.direct, ...(o.storage ? { storage: o.storage } : {}) }, log);
  const { device } = opened;
  const statePath = o.state ?? (o.storage === undefined && (await stat(o.file)).isFile() ? `${o.file}.aoe.json` : undefined);
  const server = new AoeServer({ bufferCount: o.bufferCount, log, metrics: new Metrics() });
  try {
    await server.start();
    await server.addTarget({
      shelf: o.shelf,
      slot: o.slot,
      device,
      name: o.file,
      interfaces: o.interfaces,
      allow: o.allow,
      state: statePath === undefined ? new MemoryAoeStateStore() : new FileAoeStateStore(statePath),
      syncWrites: o.syncWrites,
    });
    out.write(`exporting ${opened.label} (${device.size} bytes, ${device.blockSize}-byte blocks${opened.readOnly ? ', read-only' : ''}${o.syncWrites ? ', synchronous writes' : ''}${o.direct ? ', direct I/O' : ''}) as e${o.shelf}.${o.slot}, ${o.bufferCount} buffers${o.allow.length ? `, mask list ${o.allow.join(',')}` : ''}${statePath ? `, state ${statePath}` : ''}\n`);
    for (const ifname of o.interfaces) {
      const info = interfaceInfo(ifname);
      out.write(`serving e${o.shelf}.${o.slot} on ${ifname} (${macToString(info.mac)}, MTU ${info.mtu}, ${sectorsPerFrame(info.mtu)} sectors per frame)\n`);
    }
    if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    out.write('stopping\n');
  } finally {
    await server.stop();
    if (!opened.readOnly) await device.flush().catch(() => undefined);
    await device.close();
    await opened.driver?.close();
  }
}

/** Registers `diskless export aoe FILE|VOLUME ...` under `export`. */
export function registerExportAoe(exp: Command): void {
  const aoe = exp
    .command('aoe')
    .description('serve FILE (or with --pool/--zfs a VOLUME, or read-only VOLUME@SNAP) as one ATA-over-Ethernet target in the foreground until SIGINT/SIGTERM (like vblade)')
    .argument('<file>', 'regular file or block device to export; with --pool or --zfs a volume name, or NAME@SNAP (read-only)')
    .option('--iface <names>', 'interfaces to serve on, comma-separated (required: AoE is raw Ethernet with no authentication)')
    .option('--shelf <n>', 'shelf (major) address 0-65534 (required)')
    .option('--slot <n>', 'slot (minor) address 0-254 (required)')
    .option('--allow <macs>', 'answer only these initiator MACs (the Mac Mask List), comma-separated')
    .option('--read-only', 'refuse writes (ATA ABRT)', false)
    .option('--block-size <bytes>', 'logical block size of a FILE, 512 or 4096 (a volume has its own); AoE always addresses 512-byte sectors', '512')
    .option('--sync', 'make every write durable before answering it (default: durable at FLUSH CACHE, like a drive with its write cache on)', false)
    .option('--direct', 'read and write FILE with O_DIRECT, past the page cache (like vblade -d); the block size becomes at least the file system\'s direct I/O alignment', false)
    .option('--buffer-count <n>', 'requests executed at once, advertised to initiators', String(AOE_SERVER_DEFAULTS.bufferCount))
    .option('--state <file>', 'keep the config string, mask and reserve lists in this JSON file (default: FILE.aoe.json for a regular file; memory only for a volume)')
    .option('--log-level <level>', 'log level on stderr', 'warn');
  addStorageOptions(aoe, false).action(async (file: string, flags: StorageFlags & RawFlags, cmd: Command) => {
    const options = parseExportAoeOptions(file, flags);
    const storage = await exportStorage(flags, cmd);
    await untilSignal((signal) => exportAoe(storage ? { ...options, storage } : options, signal));
  });
}
