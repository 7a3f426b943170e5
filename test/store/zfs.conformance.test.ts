/**
 * The storage conformance suite against the zfs driver on zfs-fuse (pool version 23): every
 * case gets its own pool on a sparse file (prefix dl4a), destroyed after the case. The daemon
 * is started when it is not running, and checked before each case: one that stopped answering
 * fails every later case at once with one message (test/support/zfs-fuse.ts); a command that
 * hangs fails after ZFS_TEST_COMMAND_TIMEOUT_MS, inside the case timeout, naming itself.
 */
import { ZfsStorageDriver } from '../../src/store/zfs/zfs-storage-driver.js';
import { createTestPool, ZFS_TEST_COMMAND_TIMEOUT_MS } from '../support/zfs-fuse.js';
import type { StorageDriverFixture } from './conformance/conformance-support.js';
import { defineStorageConformance } from './conformance/storage-conformance.js';

defineStorageConformance('zfs (zfs-fuse)', async (): Promise<StorageDriverFixture> => {
  const pool = await createTestPool({ prefix: 'dl4a-conf', size: 256 * 1024 * 1024 });
  const dataset = `${pool.name}/diskless`;
  let current: ZfsStorageDriver;
  try {
    current = await ZfsStorageDriver.open({ dataset, commandTimeoutMs: ZFS_TEST_COMMAND_TIMEOUT_MS });
  } catch (err) {
    await pool.destroy();
    throw err;
  }
  return {
    driver: current,
    async reopen() {
      await current.close();
      current = await ZfsStorageDriver.open({ dataset, commandTimeoutMs: ZFS_TEST_COMMAND_TIMEOUT_MS });
      return current;
    },
    async cleanup() {
      try {
        await current.close();
      } finally {
        await pool.destroy();
      }
    },
  };
});
