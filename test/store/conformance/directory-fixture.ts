/**
 * A conformance fixture for drivers whose storage is a directory: a fresh temporary directory
 * per case, `open(dir)` to (re)open the driver on it, and removal on cleanup.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StorageDriver } from '../../../src/store/storage-driver.js';
import type { StorageDriverFactory, StorageDriverFixture } from './conformance-support.js';

/** A factory that opens a driver on a new temporary directory for every case. */
export function directoryFixture(prefix: string, open: (dir: string) => Promise<StorageDriver>): StorageDriverFactory {
  return async (): Promise<StorageDriverFixture> => {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    let current = await open(dir);
    return {
      driver: current,
      async reopen() {
        await current.close();
        current = await open(dir);
        return current;
      },
      async cleanup() {
        try {
          await current.close();
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
    };
  };
}
