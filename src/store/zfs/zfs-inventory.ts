import { DEFAULT_BLOCK_SIZE } from '../create-options.js';
import type { SnapshotInfo, VolumeInfo } from '../storage-driver.js';
import { zfsError } from './zfs-command.js';
import type { ZfsDatasets } from './zfs-datasets.js';
import { readZfsSidecar } from './zfs-sidecar.js';
import { decodeZfsStreamBegin, ZFS_RECORD_HEADER_BYTES } from './zfs-stream.js';
import { derivedWritten, isoCreation, notFoundSnapshot, numberProp, recordedHoldTags, snapshotInfo, stringProp, volumeOrigin, volumeRow, type ZfsDataset, type ZfsTree } from './zfs-tree.js';

/**
 * Turns rows of the tree into the contract's VolumeInfo and SnapshotInfo, fetching what the
 * tree read does not carry: the geometry (zvol properties or the sidecar), the hold tags, and
 * the snapshot guid where the pool has no `guid` property. One per driver.
 */
export class ZfsInventory {
  constructor(private readonly datasets: ZfsDatasets) {}

  async volumeInfo(d: ZfsDataset): Promise<VolumeInfo> {
    const { size, blockSize } = await this.geometry(d);
    return {
      name: d.name,
      size,
      blockSize,
      used: numberProp(d.props, 'used'),
      referenced: numberProp(d.props, 'referenced'),
      written: derivedWritten(d),
      createdAt: isoCreation(d.props),
      origin: volumeOrigin(this.datasets.root, d),
    };
  }

  /** Size and block size: the zvol's volsize, or the sidecar inside the dataset (mounting it if needed). */
  async geometry(d: ZfsDataset): Promise<{ size: number; blockSize: number }> {
    if (this.datasets.features.zvols) {
      const bs = numberProp(d.props, 'diskless:blocksize');
      return { size: numberProp(d.props, 'volsize'), blockSize: bs === 4096 ? 4096 : DEFAULT_BLOCK_SIZE };
    }
    return readZfsSidecar(await this.datasets.mountpointOf(d), d.name);
  }

  /** SnapshotInfo of `volume@snapshot` from a fresh tree read; STORE_NOT_FOUND when missing. */
  async findSnapshot(volume: string, snapshot: string): Promise<SnapshotInfo> {
    const tree = await this.datasets.tree(false);
    const d = volumeRow(tree, volume);
    const i = d.snapshots.findIndex((s) => s.name === snapshot);
    if (i < 0) throw notFoundSnapshot(volume, snapshot);
    return this.snapshotInfo(tree, d, i);
  }

  /** SnapshotInfo of snapshot `index` of `d`. */
  async snapshotInfo(tree: ZfsTree, d: ZfsDataset, index: number): Promise<SnapshotInfo> {
    const s = d.snapshots[index]!;
    const guid = await this.guidOf(s.full, s.props);
    const userrefs = numberProp(s.props, 'userrefs');
    let holds: string[] = [];
    if (userrefs > 0) {
      if (this.datasets.features.holdsCommand) {
        const out = await this.datasets.zfs(['holds', '-H', s.full], `list the holds of ${s.full}`);
        holds = out.split('\n').filter((l) => l.trim() !== '').map((l) => l.split('\t')[1] ?? '');
      } else {
        holds = recordedHoldTags(s.props);
        // Holds placed outside this driver have no recorded tag: show that they exist.
        for (let i = holds.length; i < userrefs; i++) holds.push(`(unknown-${i - holds.length + 1})`);
      }
    }
    return snapshotInfo(tree, d, index, guid, holds);
  }

  /**
   * The snapshot's ZFS guid: the `guid` property where it exists; else the recorded
   * `diskless:guid`; else read from the header of a send stream of it (zfs-fuse has no `guid`
   * property) and recorded for next time.
   */
  async guidOf(full: string, props: ReadonlyMap<string, string>): Promise<string> {
    const known = stringProp(props, 'guid') ?? stringProp(props, 'diskless:guid');
    if (known !== undefined) return known;
    const what = `read the guid of ${full}`;
    const proc = this.datasets.spawnZfs(['send', full], 'ignore');
    const head = await proc.within(readAtLeast(proc.child.stdout! as AsyncIterable<Buffer>, ZFS_RECORD_HEADER_BYTES), what, { snapshot: full });
    proc.child.kill('SIGTERM');
    const end = await proc.done;
    if (head.length < ZFS_RECORD_HEADER_BYTES) throw zfsError(end, what, { snapshot: full });
    const guid = decodeZfsStreamBegin(head).toGuid;
    await this.datasets.zfs(['set', `diskless:guid=${guid}`, full], `record the guid of ${full}`, { snapshot: full });
    return guid;
  }
}

/** The first `n` or more bytes of `source` (fewer when it ends first); stops reading there. */
async function readAtLeast(source: AsyncIterable<Buffer>, n: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let got = 0;
  for await (const chunk of source) {
    parts.push(chunk);
    got += chunk.length;
    if (got >= n) break;
  }
  return Buffer.concat(parts);
}
