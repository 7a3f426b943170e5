import { mkdir, readFile, rename } from 'node:fs/promises';
import { writeFileDurably } from '../store/write-file-durably.js';
import { dirname } from 'node:path';
import { DisklessError } from '../errors/index.js';
import type { Logger } from '../observe/logger.js';
import type { Metrics } from '../observe/metrics.js';

/** One machine the inventory did not know that asked for its boot script. */
export interface DiscoveredMachine {
  /** Lower-case colon form. */
  readonly mac: string;
  /** ISO 8601 times of the first and the latest script request. */
  readonly firstSeen: string;
  readonly lastSeen: string;
  /** Option 93 architecture from its latest DHCP request, when the DHCP server saw one. */
  readonly arch?: number;
  /** Address it fetched the script from. */
  readonly ip?: string;
  /** Script requests so far (one per retry). */
  readonly requests: number;
}

/** One script request from an unknown machine. */
export interface Sighting {
  readonly mac: string;
  readonly at: Date;
  readonly arch?: number;
  readonly ip?: string;
}

export interface DiscoveryStoreOptions {
  /** The JSON file, normally `<dataDir>/discovered.json`. */
  readonly file: string;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Most machines kept; the least recently seen is dropped beyond it (a flood of made-up MACs cannot grow the file without bound). */
  readonly maxMachines?: number;
}

export const DISCOVERY_STORE_DEFAULTS = { maxMachines: 4096 } as const;

/** On-disk format version of discovered.json: `{ "version": 1, "machines": [DiscoveredMachine...] }`. */
export const DISCOVERY_FILE_VERSION = 1;

/**
 * The machines seen under `defaults.unknownNode: discovery`, kept in memory and persisted to
 * one JSON file by atomic replace (write a temporary file, fsync, rename), so a crash leaves
 * either the old or the new list, never half of one. Writes are coalesced: a burst of
 * sightings costs at most two writes. An operator reads the file (or `list()`) to adopt a
 * machine into the configuration; once the MAC is in the inventory its next retry boots it.
 */
export class DiscoveryStore {
  private readonly machines = new Map<string, DiscoveredMachine>();
  private readonly maxMachines: number;
  private writing: Promise<void> | undefined;
  private dirty = false;

  constructor(private readonly options: DiscoveryStoreOptions) {
    this.maxMachines = options.maxMachines ?? DISCOVERY_STORE_DEFAULTS.maxMachines;
  }

  /**
   * Reads the file once at start-up. A missing file is an empty list. A damaged one (not JSON,
   * wrong version) is moved aside to `<file>.damaged-<time>` and logged, and the list starts
   * empty: these are observations, not configuration, and must not keep the server down.
   */
  async load(): Promise<void> {
    const { file, log } = this.options;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new DisklessError('DISCOVERY_STORE_FAILED', `cannot read ${file}: ${(err as Error).message}`, { file }, { cause: err });
    }
    try {
      for (const m of parseDiscoveryFile(text)) this.machines.set(m.mac, m);
    } catch (err) {
      const aside = `${file}.damaged-${Date.now()}`;
      await rename(file, aside).catch(() => undefined);
      log.warn({ file, movedTo: aside, err: (err as Error).message }, 'discovered-machines file is damaged; starting with an empty list');
    }
  }

  /** Machines in first-seen order. */
  list(): DiscoveredMachine[] {
    return [...this.machines.values()].sort((a, b) => a.firstSeen.localeCompare(b.firstSeen) || a.mac.localeCompare(b.mac));
  }

  get(mac: string): DiscoveredMachine | undefined {
    return this.machines.get(mac);
  }

  /** Records a sighting and persists it; resolves once it is on disk. Throws DISCOVERY_STORE_FAILED. */
  async record(s: Sighting): Promise<DiscoveredMachine> {
    const prev = this.machines.get(s.mac);
    const at = s.at.toISOString();
    const arch = s.arch ?? prev?.arch;
    const ip = s.ip ?? prev?.ip;
    const machine: DiscoveredMachine = {
      mac: s.mac,
      firstSeen: prev?.firstSeen ?? at,
      lastSeen: at,
      ...(arch === undefined ? {} : { arch }),
      ...(ip === undefined ? {} : { ip }),
      requests: (prev?.requests ?? 0) + 1,
    };
    this.machines.delete(s.mac); // re-insert: Map order becomes least-recently-seen first
    this.machines.set(s.mac, machine);
    while (this.machines.size > this.maxMachines) {
      const oldest = this.machines.keys().next().value as string;
      this.machines.delete(oldest);
      this.options.metrics.inc('diskless_control_discovery_evicted_total', {}, 1, 'discovered machines dropped because the list was full');
    }
    this.options.metrics.set('diskless_control_discovered_machines', this.machines.size, {}, 'machines waiting for adoption');
    await this.persist();
    return machine;
  }

  /** Drops a machine (adopted into the inventory). Resolves true when it was listed. */
  async forget(mac: string): Promise<boolean> {
    if (!this.machines.delete(mac)) return false;
    this.options.metrics.set('diskless_control_discovered_machines', this.machines.size, {}, 'machines waiting for adoption');
    await this.persist();
    return true;
  }

  /** Waits for any write in progress (used at shutdown). */
  async flush(): Promise<void> {
    await this.writing?.catch(() => undefined);
  }

  private persist(): Promise<void> {
    this.dirty = true;
    this.writing ??= this.drain().finally(() => {
      this.writing = undefined;
    });
    return this.writing;
  }

  private async drain(): Promise<void> {
    let failure: unknown;
    while (this.dirty) {
      this.dirty = false;
      try {
        await this.writeFile(this.list());
        failure = undefined;
      } catch (err) {
        failure = err;
      }
    }
    if (failure !== undefined) throw failure;
  }

  private async writeFile(machines: DiscoveredMachine[]): Promise<void> {
    const { file } = this.options;
    try {
      await mkdir(dirname(file), { recursive: true });
      await writeFileDurably(file, JSON.stringify({ version: DISCOVERY_FILE_VERSION, machines }, null, 2) + '\n', 0o644);
    } catch (err) {
      throw new DisklessError('DISCOVERY_STORE_FAILED', `cannot write ${file}: ${(err as Error).message}`, { file }, { cause: err });
    }
  }
}

/** Parses discovered.json text; throws DISCOVERY_STORE_FAILED on anything but version 1 with well-formed entries. */
export function parseDiscoveryFile(text: string): DiscoveredMachine[] {
  const bad = (why: string) => new DisklessError('DISCOVERY_STORE_FAILED', `cannot parse discovered machines: ${why}`, { why });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw bad(`not JSON (${(err as Error).message})`);
  }
  const d = doc as { version?: unknown; machines?: unknown };
  if (typeof d !== 'object' || d === null || d.version !== DISCOVERY_FILE_VERSION || !Array.isArray(d.machines)) {
    throw bad(`expected {"version": ${DISCOVERY_FILE_VERSION}, "machines": [...]}`);
  }
  return d.machines.map((m: unknown, i: number) => {
    const e = m as Record<string, unknown>;
    const ok =
      typeof e === 'object' && e !== null &&
      typeof e.mac === 'string' && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(e.mac) &&
      typeof e.firstSeen === 'string' && typeof e.lastSeen === 'string' &&
      Number.isInteger(e.requests) &&
      (e.arch === undefined || Number.isInteger(e.arch)) &&
      (e.ip === undefined || typeof e.ip === 'string');
    if (!ok) throw bad(`machines[${i}] is not {mac, firstSeen, lastSeen, requests, arch?, ip?}`);
    return {
      mac: e.mac as string,
      firstSeen: e.firstSeen as string,
      lastSeen: e.lastSeen as string,
      ...(e.arch === undefined ? {} : { arch: e.arch as number }),
      ...(e.ip === undefined ? {} : { ip: e.ip as string }),
      requests: e.requests as number,
    };
  });
}
