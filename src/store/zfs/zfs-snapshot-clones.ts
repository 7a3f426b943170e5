import { open } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { DisklessError } from '../../errors/index.js';
import type { BlockDevice } from '../block-device.js';
import { processAlive } from '../process-alive.js';
import { assertName } from '../volume-name.js';
import { FileBlockDevice, type WarnLog } from '../file/file-block-device.js';
import type { ZfsDatasets } from './zfs-datasets.js';
import type { ZfsInventory } from './zfs-inventory.js';
import { snapshotRow } from './zfs-tree.js';
import { ZfsVolumeDevice } from './zfs-volume-device.js';

/** Internal datasets (snapshot-open clones) start with "_", which no volume name may; then the owner's pid. */
const OPEN_CLONE_PREFIX = '_open-';
const OPEN_CLONE_PATTERN = new RegExp(`^${OPEN_CLONE_PREFIX}(\\d+)-`);

/**
 * Opens `volume@snapshot` read-only. zfs-fuse has no .zfs/snapshot directory (measured: ENOENT
 * even with snapdir=visible), so the snapshot is served from a temporary read-only clone
 * `<root>/_open-<pid>-<random>` that closing the device destroys. Called by
 * ZfsStorageDriver.open with a snapshot; STORE_NOT_FOUND when the snapshot is missing.
 */
export async function openSnapshotClone(datasets: ZfsDatasets, inventory: ZfsInventory, volume: string, snapshot: string, log: WarnLog | undefined): Promise<BlockDevice> {
  assertName(snapshot, 'snapshot');
  const s = snapshotRow(await datasets.tree(false), volume, snapshot);
  const clone = `${datasets.root}/${OPEN_CLONE_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`;
  await datasets.zfs(['clone', '-o', 'readonly=on', s.full, clone], `open snapshot ${volume}@${snapshot}`, { volume, snapshot });
  // -f: FUSE releases the closed file asynchronously, so a plain destroy can say busy for a while; the clone is ours alone.
  const release = (): Promise<void> => datasets.destroy(clone, ['-f'], `close snapshot ${volume}@${snapshot}`, { volume, snapshot });
  try {
    const row = (await datasets.tree(false)).internal.find((x) => x.dataset === clone);
    if (!row) throw new DisklessError('STORE_ZFS', `cannot open snapshot ${volume}@${snapshot}: clone ${clone} vanished`, { volume, snapshot });
    const { size, blockSize } = await inventory.geometry({ ...row, name: volume });
    const path = await datasets.imagePath(volume, row);
    const fh = await datasets.fsCall('open', volume, () => open(path, 'r'));
    return new ZfsVolumeDevice(new FileBlockDevice(fh, size, blockSize, true, `${volume}@${snapshot}`, log ? { log } : {}), release);
  } catch (err) {
    await release().catch(() => undefined);
    throw err;
  }
}

/**
 * Destroys the snapshot-open clones of processes that no longer run (a crash between open and
 * close). Called once when a driver opens; a clone it cannot destroy is logged, not thrown.
 */
export async function destroyStaleClones(datasets: ZfsDatasets, log: WarnLog | undefined): Promise<void> {
  const tree = await datasets.tree(false);
  for (const d of tree.internal) {
    const m = OPEN_CLONE_PATTERN.exec(d.name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processAlive(pid)) continue;
    await datasets.destroy(d.dataset, [], `destroy stale snapshot clone ${d.dataset}`, {}).catch((err: unknown) => log?.warn({ dataset: d.dataset, err: String(err) }, `cannot destroy stale snapshot clone ${d.dataset}`));
  }
}
