/**
 * Which storage driver holds the volumes, and the ONE function that opens it: the server
 * (config `storage:`), `diskless volume` and `diskless export iscsi` all go through
 * `openStorageDriver`, so a pool means the same thing everywhere.
 */
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { parseSize } from '../config/parse-size.js';
import { EmbeddedStorageDriver } from '../store/embedded/embedded-storage-driver.js';
import { FileStorageDriver } from '../store/file/file-storage-driver.js';
import { ZfsStorageDriver } from '../store/zfs/zfs-storage-driver.js';
import type { WarnLog } from '../store/file/file-block-device.js';
import type { StorageDriver } from '../store/storage-driver.js';

/** A storage driver and where its volumes are. */
export type StorageChoice =
  /** Copy-on-write pool in a directory (the default): snapshots, clones, checksums, send/receive. */
  | { readonly driver: 'embedded'; readonly pool: string; readonly mirror?: string; readonly capacity?: number }
  /** One sparse file per volume in `<dataDir>/volumes`: no snapshots (the first driver). */
  | { readonly driver: 'file'; readonly dataDir: string }
  /** OpenZFS through `zfs`/`zpool`: volumes under `dataset`. */
  | { readonly driver: 'zfs'; readonly dataset: string };

/**
 * The storage a validated configuration names (`storage:`): the embedded pool defaults to
 * `<server.dataDir>/pool`; the file driver keeps its volumes in `<server.dataDir>/volumes` as
 * it always has.
 */
export function storageChoiceFromConfig(config: Config): StorageChoice {
  const s = config.storage;
  switch (s.driver) {
    case 'file':
      return { driver: 'file', dataDir: config.server.dataDir };
    case 'zfs':
      // check-semantics guarantees zfsDataset with driver zfs.
      return { driver: 'zfs', dataset: s.zfsDataset! };
    case 'embedded':
      return {
        driver: 'embedded',
        pool: s.pool ?? join(config.server.dataDir, 'pool'),
        ...(s.mirror === undefined ? {} : { mirror: s.mirror }),
        ...(s.capacity === undefined ? {} : { capacity: parseSize(s.capacity) }),
      };
  }
}

/** One line for logs and `volume` output: `embedded pool /p (mirror /m)`, `zfs tank/x`, `file /d/volumes`. */
export function describeStorage(c: StorageChoice): string {
  if (c.driver === 'embedded') return `embedded pool ${c.pool}${c.mirror ? ` (mirror ${c.mirror})` : ''}`;
  if (c.driver === 'zfs') return `zfs ${c.dataset}`;
  return `file ${join(c.dataDir, 'volumes')}`;
}

/**
 * Opens the chosen driver. The caller owns it: close every device it opened, then
 * `await driver.close()` (the embedded pool holds a lock and its metadata database until then).
 * Throws what the driver's open throws: STORE_BUSY when another process holds the pool,
 * STORE_ZFS when the dataset is missing or `zfs` fails.
 */
export async function openStorageDriver(choice: StorageChoice, log?: WarnLog): Promise<StorageDriver> {
  switch (choice.driver) {
    case 'file':
      return new FileStorageDriver({ dataDir: choice.dataDir, ...(log ? { log } : {}) });
    case 'embedded':
      return EmbeddedStorageDriver.open({ pool: choice.pool, ...(choice.mirror === undefined ? {} : { mirror: choice.mirror }), ...(choice.capacity === undefined ? {} : { capacity: choice.capacity }) });
    case 'zfs':
      return ZfsStorageDriver.open({ dataset: choice.dataset, ...(log ? { log } : {}) });
  }
}
