/**
 * What `diskless volume` prints, in the shape a `zfs` user reads: sizes as `zfs list` shows
 * them (`96K`, `1.50M`, `10G`; exact bytes with -p), aligned columns with a header or, with
 * -H, tab-separated rows without one; and the parsing of its arguments (NAME@SNAP, sizes) into
 * USAGE errors that name the argument, the value and what is allowed. Pure: no I/O.
 */
import { parseSize } from '../config/parse-size.js';
import { DisklessError } from '../errors/index.js';
import type { ScrubReport, SnapshotInfo, VolumeInfo } from '../store/storage-driver.js';

/** A USAGE error: `option --size: value "x" is not allowed; allowed: ...` (exit status 2). */
export function usageError(what: string, value: string, allowed: string, why?: string): DisklessError {
  return new DisklessError('USAGE', `${what}: value ${JSON.stringify(value)} is not allowed${why ? ` (${why})` : ''}; allowed: ${allowed}`, { field: what, value, allowed });
}

const SUFFIXES = ['B', 'K', 'M', 'G', 'T', 'P', 'E'];

/**
 * Bytes as `zfs list` prints them: binary units, at most five characters, an exact multiple
 * of its unit without decimals (`10G`), otherwise as many decimals (2, 1, 0) as fit (`1.50M`,
 * `15.5M`, `155M`); bytes below 1 KiB as `512B`.
 */
export function humanSize(bytes: number): string {
  let index = 0;
  while (index < SUFFIXES.length - 1 && bytes >= 1024 ** (index + 1)) index++;
  const unit = SUFFIXES[index]!;
  const scale = 1024 ** index;
  if (index === 0 || bytes % scale === 0) return `${Math.floor(bytes / scale)}${unit}`;
  for (let decimals = 2; decimals > 0; decimals--) {
    const text = `${(bytes / scale).toFixed(decimals)}${unit}`;
    if (text.length <= 5) return text;
  }
  return `${(bytes / scale).toFixed(0)}${unit}`;
}

/** A size for the table: `humanSize`, or the exact byte count with -p. */
export function sizeCell(bytes: number, parsable: boolean): string {
  return parsable ? String(bytes) : humanSize(bytes);
}

/**
 * Rows as `zfs list` lays them out: with a header and space-aligned columns (text left, numbers
 * right), or with `scripted` (-H) tab-separated and no header. `numeric[i]` right-aligns column i.
 */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[], scripted: boolean, numeric: readonly boolean[]): string {
  if (scripted) return rows.map((r) => r.join('\t') + '\n').join('');
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: readonly string[]) =>
    r
      .map((cell, i) => (i === r.length - 1 && !numeric[i] ? cell : numeric[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd() + '\n';
  return all.map(line).join('');
}

/** Column headers of `volume list` for volumes (and -t all) and for -t snapshot. */
export const VOLUME_COLUMNS = ['NAME', 'USED', 'REFER', 'WRITTEN', 'ORIGIN'] as const;
export const SNAPSHOT_COLUMNS = ['NAME', 'USED', 'REFER'] as const;

/** The ORIGIN column: `volume@snapshot` for a clone, `-` otherwise (as `zfs list`). */
export function originCell(v: VolumeInfo): string {
  return v.origin.kind === 'clone' ? `${v.origin.volume}@${v.origin.snapshot}` : '-';
}

/** One `volume list` row of a volume. */
export function volumeRow(v: VolumeInfo, parsable: boolean): string[] {
  return [v.name, sizeCell(v.used, parsable), sizeCell(v.referenced, parsable), sizeCell(v.written, parsable), originCell(v)];
}

/** One `volume list` row of a snapshot: three columns for -t snapshot, five (ORIGIN `-`) for -t all. */
export function snapshotRow(s: SnapshotInfo, parsable: boolean, wide: boolean): string[] {
  const base = [`${s.volume}@${s.name}`, sizeCell(s.used, parsable), sizeCell(s.referenced, parsable)];
  return wide ? [...base, sizeCell(s.written, parsable), '-'] : base;
}

/** `volume info NAME`: one `property  value` line each, like `zfs get all`. */
export function volumeProperties(v: VolumeInfo, snapshots: readonly SnapshotInfo[], parsable: boolean): Array<[string, string]> {
  const origin: string = v.origin.kind === 'clone' ? `${v.origin.volume}@${v.origin.snapshot}` : v.origin.kind === 'import' ? `import ${v.origin.path}` : v.origin.kind;
  return [
    ['name', v.name],
    ['type', 'volume'],
    ['creation', v.createdAt],
    ['volsize', sizeCell(v.size, parsable)],
    ['volblocksize', String(v.blockSize)],
    ['used', sizeCell(v.used, parsable)],
    ['referenced', sizeCell(v.referenced, parsable)],
    ['written', sizeCell(v.written, parsable)],
    ['origin', origin],
    ['snapshots', snapshots.length ? snapshots.map((s) => s.name).join(',') : '-'],
  ];
}

/** `volume info NAME@SNAP`. */
export function snapshotProperties(s: SnapshotInfo, parsable: boolean): Array<[string, string]> {
  return [
    ['name', `${s.volume}@${s.name}`],
    ['type', 'snapshot'],
    ['creation', s.createdAt],
    ['used', sizeCell(s.used, parsable)],
    ['referenced', sizeCell(s.referenced, parsable)],
    ['written', sizeCell(s.written, parsable)],
    ['guid', s.guid],
    ['clones', s.clones.length ? s.clones.join(',') : '-'],
    ['userrefs', String(s.holds.length)],
    ['holds', s.holds.length ? s.holds.join(',') : '-'],
  ];
}

/** Property lines aligned on the value column. */
export function formatProperties(props: ReadonlyArray<readonly [string, string]>, scripted: boolean): string {
  if (scripted) return props.map(([k, v]) => `${k}\t${v}\n`).join('');
  const w = Math.max(...props.map(([k]) => k.length));
  return props.map(([k, v]) => `${k.padEnd(w)}  ${v}\n`).join('');
}

/** The scrub report, one line: what was checked, found, healed and lost. */
export function formatScrub(r: ScrubReport, parsable: boolean): string {
  const what = r.volume === undefined ? 'pool' : `volume ${r.volume}`;
  return `scrub of ${what}: ${sizeCell(r.bytesChecked, parsable)} checked, ${r.errors} bad copies found, ${r.repaired} repaired, ${r.unrecoverable} unrecoverable\n`;
}

/** A volume reference `NAME@SNAP` split in two; USAGE naming `argument` when it is not of that form. */
export function parseSnapshotRef(argument: string, value: string): { volume: string; snapshot: string } {
  const at = value.indexOf('@');
  if (at <= 0 || at === value.length - 1 || value.indexOf('@', at + 1) >= 0) throw usageError(argument, value, 'VOLUME@SNAPSHOT, e.g. golden@v1');
  return { volume: value.slice(0, at), snapshot: value.slice(at + 1) };
}

/** `NAME` or `NAME@SNAP`. */
export function parseVolumeOrSnapshot(argument: string, value: string): { volume: string; snapshot?: string } {
  if (!value.includes('@')) {
    if (value === '') throw usageError(argument, value, 'VOLUME or VOLUME@SNAPSHOT');
    return { volume: value };
  }
  return parseSnapshotRef(argument, value);
}

/** A byte size option (`64MiB`, `10G`, `1048576`), positive; USAGE naming the option otherwise. */
export function parseSizeOption(option: string, value: string): number {
  let bytes: number;
  try {
    bytes = parseSize(value);
  } catch {
    throw usageError(`option ${option}`, value, 'a byte count or a size like 64MiB, 10G (binary units K M G T)');
  }
  if (bytes <= 0) throw usageError(`option ${option}`, value, 'a size above 0');
  return bytes;
}
