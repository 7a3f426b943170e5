import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { isDisklessError } from '../../errors/index.js';
import { runZfs, ZFS_COMMAND_TIMEOUT_MS, zfsError, type ZfsPrograms } from './zfs-command.js';

/**
 * What the pool and the installed zfs tools can do, probed once when the driver opens
 * (`ZfsStorageDriver.open`). zfs-fuse 0.7 (pool version 23) answers: no zvols, no resumable
 * receive, no bookmarks, no `written`/`guid` properties, no working `zfs holds`.
 */
export interface ZfsFeatures {
  /** Pool version (1-28), or 5000 for a feature-flags pool. */
  readonly poolVersion: number;
  /** `zfs create -V` works: volumes are zvols. Otherwise a file `volume.img` in a dataset. */
  readonly zvols: boolean;
  /** `zfs receive -s` / `zfs send -t` / `receive_resume_token` (feature@extensible_dataset and a zfs that knows them). */
  readonly resumableReceive: boolean;
  /** feature@bookmarks is enabled or active. */
  readonly bookmarks: boolean;
  /** The `written` property exists (else the driver derives it, docs/zfs.md). */
  readonly writtenProperty: boolean;
  /** The `guid` property exists (else the driver reads it from a send stream header). */
  readonly guidProperty: boolean;
  /** `zfs holds -H` works (zfs-fuse's needs a python helper it does not ship). */
  readonly holdsCommand: boolean;
}

/** Feature-flags pools report version "-" and say 5000 in the docs. */
export const FEATURE_FLAGS_POOL_VERSION = 5000;

/**
 * Probes `pool` and the zfs tools. `scratchParent` is a dataset the probe may create (and
 * destroys again) a tiny zvol under, to see whether `zfs create -V` works: zfs-fuse aborts
 * with "Function not implemented". A probe that fails says "no"; one that does not finish
 * within `timeoutMs` is killed and rejects with STORE_ZFS (a hung zfs is not a missing feature).
 */
export async function detectZfsFeatures(programs: ZfsPrograms, pool: string, scratchParent: string, timeoutMs = ZFS_COMMAND_TIMEOUT_MS): Promise<ZfsFeatures> {
  const succeeds = async (program: string, args: string[]): Promise<string | undefined> => {
    try {
      return await runZfs(program, args, 'probe', {}, timeoutMs);
    } catch (err) {
      if (isDisklessError(err, 'STORE_ZFS') && err.data['timeoutMs'] !== undefined) throw err;
      return undefined;
    }
  };
  const versionText = (await runZfs(programs.zpool, ['get', 'version', pool], `read the version of pool ${pool}`, { pool }, timeoutMs)).split('\n')[1] ?? '';
  const versionField = versionText.trim().split(/\s+/)[2] ?? '-';
  const poolVersion = /^\d+$/.test(versionField) ? Number(versionField) : FEATURE_FLAGS_POOL_VERSION;
  const feature = async (name: string): Promise<boolean> => {
    if (poolVersion !== FEATURE_FLAGS_POOL_VERSION) return false;
    const out = await succeeds(programs.zpool, ['get', '-H', '-o', 'value', `feature@${name}`, pool]);
    return out !== undefined && /^(enabled|active)$/.test(out.trim());
  };
  const property = async (name: string): Promise<boolean> => (await succeeds(programs.zfs, ['get', '-H', '-o', 'value', name, scratchParent])) !== undefined;
  const resumableReceive = (await feature('extensible_dataset')) && (await property('receive_resume_token'));
  const bookmarks = await feature('bookmarks');
  const writtenProperty = await property('written');
  const guidProperty = await property('guid');
  // "no such dataset" from a working `zfs holds`, "internal error: .../pyzfs.py not found" from zfs-fuse's.
  // (zfs-fuse prints its complaint on stdout and exits 255.)
  const holdsProbe = await outcome(programs.zfs, ['holds', '-H', `${scratchParent}@diskless-probe-${randomBytes(4).toString('hex')}`], timeoutMs);
  const holdsCommand = holdsProbe.status !== 255 && holdsProbe.status !== -1 && !/internal error|pyzfs|unrecognized command|usage/i.test(holdsProbe.output);
  const probe = `${scratchParent}/_probe-zvol-${process.pid}-${randomBytes(4).toString('hex')}`;
  const zvols = (await succeeds(programs.zfs, ['create', '-s', '-V', '1M', probe])) !== undefined;
  if (zvols) await runZfs(programs.zfs, ['destroy', probe], `destroy the zvol probe ${probe}`, {}, timeoutMs);
  return { poolVersion, zvols, resumableReceive, bookmarks, writtenProperty, guidProperty, holdsCommand };
}

/** Everything the command printed (stdout and stderr) and its exit status; STORE_ZFS when it runs past `timeoutMs`. */
function outcome(program: string, args: string[], timeoutMs: number): Promise<{ status: number; output: string }> {
  return new Promise((resolve, reject) => {
    execFile(program, args, { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && (err as { killed?: boolean }).killed) {
        reject(zfsError({ command: program, args, status: null, signal: 'SIGKILL', stderr: String(stderr), timeoutMs }, 'probe for zfs holds'));
        return;
      }
      const status = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ status, output: `${String(stdout)}${String(stderr)}` });
    });
  });
}
