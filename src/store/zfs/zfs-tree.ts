import { DisklessError } from '../../errors/index.js';
import type { ScrubReport, SnapshotInfo, VolumeOrigin } from '../storage-driver.js';
import { VOLUME_NAME_PATTERN } from '../volume-name.js';

/**
 * The driver's view of its root dataset, decoded from one `zfs get -Hp -r -d 2 -o
 * name,property,value <props> <root>` (no I/O here): the root, each child dataset (a volume,
 * or an internal dataset whose name is not a legal volume name) and their snapshots in the
 * order zfs lists them (creation txg order, measured on zfs-fuse and documented for OpenZFS).
 */
export interface ZfsTree {
  readonly root: string;
  /** Volumes by name (children whose last component is a legal volume name). */
  readonly volumes: ReadonlyMap<string, ZfsDataset>;
  /** Children that are not volumes: snapshot-open clones (`_open-...`), probes. */
  readonly internal: readonly ZfsDataset[];
  /** Every snapshot row by full name "pool/.../vol@snap". */
  readonly snapshots: ReadonlyMap<string, ZfsSnapshotRow>;
}

export interface ZfsDataset {
  /** Full dataset name. */
  readonly dataset: string;
  /** Last component. */
  readonly name: string;
  readonly props: ReadonlyMap<string, string>;
  /** Snapshots in creation order. */
  readonly snapshots: ZfsSnapshotRow[];
}

export interface ZfsSnapshotRow {
  readonly full: string;
  readonly dataset: string;
  readonly name: string;
  readonly props: ReadonlyMap<string, string>;
}

/** Decodes the tab-separated `zfs get -H -o name,property,value` output of the tree under `root`. */
export function decodeZfsTree(root: string, text: string): ZfsTree {
  const rows = new Map<string, Map<string, string>>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [name, prop, ...value] = line.split('\t');
    if (name === undefined || prop === undefined) continue;
    let m = rows.get(name);
    if (!m) rows.set(name, (m = new Map()));
    m.set(prop, value.join('\t'));
  }
  const volumes = new Map<string, ZfsDataset>();
  const internal: ZfsDataset[] = [];
  const byDataset = new Map<string, ZfsDataset>();
  const snapshots = new Map<string, ZfsSnapshotRow>();
  for (const [name, props] of rows) {
    if (name.includes('@') || !name.startsWith(`${root}/`)) continue;
    const last = name.slice(root.length + 1);
    if (last.includes('/')) continue;
    const d: ZfsDataset = { dataset: name, name: last, props, snapshots: [] };
    byDataset.set(name, d);
    if (VOLUME_NAME_PATTERN.test(last)) volumes.set(last, d);
    else internal.push(d);
  }
  const creation = (p: ReadonlyMap<string, string>): number => Number(p.get('creation') ?? 0);
  for (const [name, props] of rows) {
    const at = name.indexOf('@');
    if (at < 0) continue;
    const row: ZfsSnapshotRow = { full: name, dataset: name.slice(0, at), name: name.slice(at + 1), props };
    snapshots.set(name, row);
    byDataset.get(row.dataset)?.snapshots.push(row);
  }
  // zfs lists snapshots in creation-txg order; a stable sort by creation second keeps ties in that order.
  for (const d of byDataset.values()) d.snapshots.sort((a, b) => creation(a.props) - creation(b.props));
  return { root, volumes: new Map([...volumes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))), internal, snapshots };
}

/** The row of volume `name`; STORE_NOT_FOUND when the tree has none. */
export function volumeRow(tree: ZfsTree, name: string): ZfsDataset {
  const d = tree.volumes.get(name);
  if (!d) throw new DisklessError('STORE_NOT_FOUND', `cannot find volume ${name}`, { volume: name });
  return d;
}

/** The row of `volume@snapshot`; STORE_NOT_FOUND when the volume or the snapshot is missing. */
export function snapshotRow(tree: ZfsTree, volume: string, snapshot: string): ZfsSnapshotRow {
  const s = volumeRow(tree, volume).snapshots.find((x) => x.name === snapshot);
  if (!s) throw notFoundSnapshot(volume, snapshot);
  return s;
}

/** STORE_NOT_FOUND for a missing snapshot. */
export function notFoundSnapshot(volume: string, snapshot: string): DisklessError {
  return new DisklessError('STORE_NOT_FOUND', `cannot find snapshot ${volume}@${snapshot}`, { volume, snapshot });
}

/**
 * The hold tags recorded in `diskless:holds` (pools whose `zfs holds` does not work, like
 * zfs-fuse's). Tags follow the volume-name rule, so they never carry the "," separator.
 */
export function recordedHoldTags(props: ReadonlyMap<string, string>): string[] {
  const v = stringProp(props, 'diskless:holds');
  return v === undefined ? [] : v.split(',').filter((t) => t !== '');
}

/** A numeric property ("-" and missing read as 0). */
export function numberProp(props: ReadonlyMap<string, string>, name: string): number {
  const v = props.get(name);
  if (v === undefined || v === '-' || v === '') return 0;
  const n = Number(v);
  return Number.isFinite(n) ? n : 0;
}

/** A user or string property, undefined for "-" / missing. */
export function stringProp(props: ReadonlyMap<string, string>, name: string): string | undefined {
  const v = props.get(name);
  return v === undefined || v === '-' || v === '' ? undefined : v;
}

/** ISO 8601 from a `creation` property in seconds. */
export function isoCreation(props: ReadonlyMap<string, string>): string {
  return new Date(numberProp(props, 'creation') * 1000).toISOString();
}

/**
 * Bytes written to `d` since its latest snapshot, for pools without the `written` property:
 *   no snapshot, not a clone: everything it references;
 *   no snapshot, a clone: its `used` (blocks born after the origin are all it owns);
 *   latest snapshot S: referenced(head) - referenced(S) + used(S).
 * The last is exact when the blocks overwritten since S were born after the snapshot before
 * S (then they are S's unique blocks, its `used`), and a lower bound otherwise (docs/zfs.md).
 */
export function derivedWritten(d: ZfsDataset): number {
  if (d.props.has('written') && d.props.get('written') !== '-') return numberProp(d.props, 'written');
  const last = d.snapshots[d.snapshots.length - 1];
  if (!last) return stringProp(d.props, 'origin') !== undefined ? numberProp(d.props, 'used') : numberProp(d.props, 'referenced');
  return Math.max(0, numberProp(d.props, 'referenced') - numberProp(last.props, 'referenced') + numberProp(last.props, 'used'));
}

/**
 * `written` of snapshot `index` of `d`, same derivation one step back: referenced(S_k) -
 * referenced(S_k-1) + used(S_k-1); the first snapshot of a clone counts from the origin's
 * referenced (`originReferenced`), the first of anything else is all it references.
 */
export function derivedSnapshotWritten(d: ZfsDataset, index: number, originReferenced: number | undefined): number {
  const s = d.snapshots[index]!;
  if (s.props.has('written') && s.props.get('written') !== '-') return numberProp(s.props, 'written');
  const prev = d.snapshots[index - 1];
  const ref = numberProp(s.props, 'referenced');
  if (prev) return Math.max(0, ref - numberProp(prev.props, 'referenced') + numberProp(prev.props, 'used'));
  if (originReferenced !== undefined) return Math.max(0, ref - originReferenced);
  return ref;
}

/** The VolumeOrigin of dataset `d` under `root`: a clone from its `origin`, else what the driver recorded. */
export function volumeOrigin(root: string, d: ZfsDataset): VolumeOrigin {
  const origin = stringProp(d.props, 'origin');
  if (origin !== undefined) {
    const at = origin.indexOf('@');
    const ds = origin.slice(0, at);
    return { kind: 'clone', volume: ds.startsWith(`${root}/`) ? ds.slice(root.length + 1) : ds, snapshot: origin.slice(at + 1) };
  }
  const kind = stringProp(d.props, 'diskless:origin');
  if (kind === 'import') return { kind: 'import', path: stringProp(d.props, 'diskless:import-path') ?? '' };
  if (kind === 'receive') return { kind: 'receive' };
  return { kind: 'empty' };
}

/** Volume names of the clones of snapshot `full` among the tree's volumes, sorted. */
export function clonesOf(tree: ZfsTree, full: string): string[] {
  return [...tree.volumes.values()].filter((v) => v.props.get('origin') === full).map((v) => v.name).sort();
}

/** Internal datasets (snapshot-open clones) cloned from `full`. */
export function internalClonesOf(tree: ZfsTree, full: string): string[] {
  return tree.internal.filter((v) => v.props.get('origin') === full).map((v) => v.dataset);
}

/** Builds a SnapshotInfo from its row; `guid` and `holds` are resolved by the caller. */
export function snapshotInfo(tree: ZfsTree, d: ZfsDataset, index: number, guid: string, holds: readonly string[]): SnapshotInfo {
  const s = d.snapshots[index]!;
  const origin = stringProp(d.props, 'origin');
  const originRow = origin !== undefined ? tree.snapshots.get(origin) : undefined;
  return {
    volume: d.name,
    name: s.name,
    createdAt: isoCreation(s.props),
    used: numberProp(s.props, 'used'),
    referenced: numberProp(s.props, 'referenced'),
    written: derivedSnapshotWritten(d, index, originRow ? numberProp(originRow.props, 'referenced') : undefined),
    guid,
    clones: clonesOf(tree, s.full),
    holds: [...holds].sort(),
  };
}

/** A ScrubReport's counters from leaf-vdev error counters before and after a scrub. */
export function scrubCounters(volume: string | undefined, bytesChecked: number, errorsFound: number, unrecoverable: number): ScrubReport {
  return { volume, bytesChecked, errors: errorsFound, repaired: Math.max(0, errorsFound - unrecoverable), unrecoverable };
}
