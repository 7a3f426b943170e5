import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DisklessError } from '../../errors/index.js';
import { writeFileDurably } from '../../store/write-file-durably.js';
import { MAX_MASK_LIST } from '../../wire/aoe/mac-mask-list.js';
import { MAX_CONFIG_STRING } from '../../wire/aoe/query-config.js';
import { MAX_RESERVE_LIST } from '../../wire/aoe/reserve-release.js';

/**
 * What an AoE target keeps across restarts: the config string initiators set (Query Config),
 * the Mac Mask List and the reserve list. `seededAllow` is the allow list the configuration
 * gave when the mask list was last seeded from it: when the configuration's list changes,
 * the configuration wins again (see AoeTarget); edits made over AoE persist until then.
 */
export interface AoeTargetState {
  readonly config: Buffer;
  readonly mask: readonly string[];
  readonly reserve: readonly string[];
  readonly seededAllow: readonly string[];
}

/** Where a target's state lives; `load` resolves undefined when nothing was saved yet. */
export interface AoeStateStore {
  load(): Promise<AoeTargetState | undefined>;
  save(state: AoeTargetState): Promise<void>;
}

const FORMAT = 'diskless-aoe-target';
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** State kept in memory only (a target with no state file: `export aoe` of a volume without --state). */
export class MemoryAoeStateStore implements AoeStateStore {
  private state: AoeTargetState | undefined;
  async load(): Promise<AoeTargetState | undefined> {
    return this.state;
  }
  async save(state: AoeTargetState): Promise<void> {
    this.state = state;
  }
}

/** One JSON file per target, replaced atomically (fsync, rename, fsync of the directory) on every change. */
export class FileAoeStateStore implements AoeStateStore {
  private saving: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  async load(): Promise<AoeTargetState | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw this.error(`cannot read it: ${(err as Error).message}`, err);
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw this.error(`not valid JSON: ${(err as Error).message}`, err);
    }
    return this.check(data);
  }

  /** Saves are serialised: the file always ends up holding the last state saved. */
  save(state: AoeTargetState): Promise<void> {
    const text = `${JSON.stringify({ format: FORMAT, version: 1, config: state.config.toString('base64'), mask: state.mask, reserve: state.reserve, seededAllow: state.seededAllow }, null, 2)}\n`;
    const next = this.saving.then(async () => {
      await mkdir(dirname(this.path), { recursive: true });
      await writeFileDurably(this.path, text, 0o600);
    });
    this.saving = next.catch(() => undefined);
    return next.catch((err: unknown) => {
      throw this.error(`cannot write it: ${(err as Error).message}`, err);
    });
  }

  private check(data: unknown): AoeTargetState {
    const d = data as Record<string, unknown>;
    if (typeof d !== 'object' || d === null || d.format !== FORMAT || d.version !== 1) throw this.error(`not a ${FORMAT} file of version 1`);
    const macs = (key: string, max: number): string[] => {
      const v = d[key];
      if (!Array.isArray(v) || v.length > max || !v.every((m) => typeof m === 'string' && MAC.test(m))) throw this.error(`"${key}" must be a list of at most ${max} MAC addresses like "52:54:00:12:34:56"`);
      return v as string[];
    };
    if (typeof d.config !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(d.config)) throw this.error('"config" must be a base64 string');
    const config = Buffer.from(d.config, 'base64');
    if (config.length > MAX_CONFIG_STRING) throw this.error(`"config" holds ${config.length} bytes, at most ${MAX_CONFIG_STRING}`);
    return { config, mask: macs('mask', MAX_MASK_LIST), reserve: macs('reserve', MAX_RESERVE_LIST), seededAllow: macs('seededAllow', MAX_MASK_LIST) };
  }

  private error(why: string, cause?: unknown): DisklessError {
    return new DisklessError('AOE_STATE_FILE', `AoE target state ${this.path}: ${why}`, { file: this.path }, cause === undefined ? undefined : { cause });
  }
}
