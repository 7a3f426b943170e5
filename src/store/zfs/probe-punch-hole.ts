import { mkdir, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { blockAllocation } from '../file/block-allocation.js';

const SPARSE_GRAIN = 4096;

/**
 * True when holes can be punched in files under `dir` (zfs-fuse: no, fallocate EOPNOTSUPP):
 * decides whether the zfs driver's file-backed volumes offer unmap. Called once per open
 * driver; creates and removes one small probe file. Never throws.
 */
export async function probePunchHole(dir: string): Promise<boolean> {
  const alloc = blockAllocation();
  if (!alloc) return false;
  const path = join(dir, `.diskless-punch-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(dir, { recursive: true });
    const fh = await open(path, 'w+');
    try {
      await fh.truncate(2 * SPARSE_GRAIN);
      alloc.punchHoleSync(fh.fd, 0, SPARSE_GRAIN);
      return true;
    } catch {
      return false;
    } finally {
      await fh.close();
    }
  } catch {
    return false;
  } finally {
    await unlink(path).catch(() => undefined);
  }
}
