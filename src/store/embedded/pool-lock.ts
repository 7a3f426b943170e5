import { open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { DisklessError } from '../../errors/index.js';
import { processAlive } from '../process-alive.js';

/**
 * One process at a time owns a pool: its in-memory extent maps, free list and open
 * transaction group would go stale under a second writer. The lock is a file `LOCK` holding
 * the owner's pid, created with O_EXCL; a lock whose process is gone (kill -9, power loss) is
 * taken over. Another live owner gives STORE_BUSY naming its pid.
 */
export class PoolLock {
  private constructor(private readonly path: string) {}

  static async acquire(poolDir: string): Promise<PoolLock> {
    const path = join(poolDir, 'LOCK');
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fh = await open(path, 'wx', 0o600);
        await fh.writeFile(`${process.pid}\n`);
        await fh.close();
        return new PoolLock(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new DisklessError('STORE_IO', `cannot lock pool ${poolDir}: ${(err as Error).message}`, { pool: poolDir, errno: (err as NodeJS.ErrnoException).code }, { cause: err });
        }
      }
      const owner = Number.parseInt((await readFile(path, 'utf8').catch(() => '')).trim(), 10);
      if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && processAlive(owner)) {
        throw new DisklessError('STORE_BUSY', `cannot open pool ${poolDir}: process ${owner} has it open (stop it, or use that process)`, { pool: poolDir, pid: owner });
      }
      if (owner === process.pid) {
        throw new DisklessError('STORE_BUSY', `cannot open pool ${poolDir}: this process already has it open`, { pool: poolDir, pid: owner });
      }
      await unlink(path).catch(() => undefined); // stale: its owner is gone
    }
    throw new DisklessError('STORE_BUSY', `cannot lock pool ${poolDir}: the lock file keeps reappearing`, { pool: poolDir });
  }

  async release(): Promise<void> {
    await unlink(this.path).catch(() => undefined);
  }
}
