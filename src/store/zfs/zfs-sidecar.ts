import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DisklessError } from '../../errors/index.js';

/** Format of `volume.json`, the sidecar inside each file-backed volume's dataset. */
export const ZFS_VOLUME_FORMAT_VERSION = 1;
/** The blocks of a file-backed volume, beside the sidecar in its dataset. */
export const IMAGE_FILE = 'volume.img';
const SIDECAR_FILE = 'volume.json';

/**
 * `volume.json`: the geometry of a file-backed volume (no zvols, as on zfs-fuse), kept inside
 * its dataset so that it travels with snapshots, clones and send streams.
 */
export interface ZfsSidecar {
  readonly format: 'diskless-zfs-volume';
  readonly version: number;
  readonly size: number;
  readonly blockSize: number;
}

/**
 * Reads and checks the sidecar in `dir` (the mounted dataset of volume `volume`); called on
 * every open and info. STORE_BAD_METADATA when it is missing, not JSON, or of another shape
 * or version.
 */
export async function readZfsSidecar(dir: string, volume: string): Promise<{ size: number; blockSize: number }> {
  const path = join(dir, SIDECAR_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new DisklessError('STORE_BAD_METADATA', `cannot read ${SIDECAR_FILE} of volume ${volume}: ${(err as Error).message}`, { volume, path }, { cause: err });
  }
  let m: Partial<ZfsSidecar>;
  try {
    m = JSON.parse(text) as Partial<ZfsSidecar>;
  } catch (err) {
    throw new DisklessError('STORE_BAD_METADATA', `cannot read ${SIDECAR_FILE} of volume ${volume}: not JSON`, { volume }, { cause: err });
  }
  if (m.format !== 'diskless-zfs-volume' || m.version !== ZFS_VOLUME_FORMAT_VERSION || !Number.isSafeInteger(m.size) || (m.blockSize !== 512 && m.blockSize !== 4096)) {
    throw new DisklessError('STORE_BAD_METADATA', `cannot read ${SIDECAR_FILE} of volume ${volume}: unexpected shape or version ${String(m.version)}`, { volume, version: m.version, allowedVersions: [ZFS_VOLUME_FORMAT_VERSION] });
  }
  return { size: m.size!, blockSize: m.blockSize };
}

/** Writes the sidecar of a new volume into `dir` atomically (temporary file, flushed, renamed). */
export async function writeZfsSidecar(dir: string, size: number, blockSize: number): Promise<void> {
  const meta: ZfsSidecar = { format: 'diskless-zfs-volume', version: ZFS_VOLUME_FORMAT_VERSION, size, blockSize };
  const tmp = join(dir, `.${SIDECAR_FILE}.${randomBytes(4).toString('hex')}`);
  await writeFile(tmp, JSON.stringify(meta, null, 2) + '\n', { mode: 0o600, flush: true });
  await rename(tmp, join(dir, SIDECAR_FILE));
}
