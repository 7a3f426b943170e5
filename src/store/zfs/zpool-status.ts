/**
 * `zpool status <pool>` decoded without I/O: the scrub line and the vdev table, the parts a
 * ScrubReport is made of. Two wordings are understood:
 *   zfs-fuse (pool version 23): ` scrub: scrub completed after 0h0m with 0 errors on <date>`,
 *     ` scrub: scrub in progress for 0h0m, 12.5% done, ...`, ` scrub: none requested`;
 *   OpenZFS 2.x: `  scan: scrub repaired 0B in 00:00:01 with 0 errors on <date>`,
 *     `  scan: scrub in progress since <date>`.
 * A leaf vdev line reads `NAME STATE READ WRITE CKSUM [N repaired]` (counters may carry K/M
 * suffixes on OpenZFS when large).
 */
export interface ZpoolStatus {
  readonly pool: string;
  readonly state: string;
  readonly scrub: ScrubState;
  /** Leaf devices (disks, files) with their error counters since import or `zpool clear`. */
  readonly devices: readonly VdevCounters[];
}

export type ScrubState =
  | { readonly kind: 'none' }
  | { readonly kind: 'running' }
  | { readonly kind: 'canceled' }
  /** `errors`: blocks the scrub could not repair ("with N errors"). */
  | { readonly kind: 'completed'; readonly errors: number };

export interface VdevCounters {
  readonly name: string;
  readonly state: string;
  readonly read: number;
  readonly write: number;
  readonly cksum: number;
  /** Bytes rewritten from a good copy by the last scrub or self-healing read ("4M repaired"), 0 when not shown. */
  readonly repairedBytes: number;
}

/** Decodes one pool's `zpool status` output. Throws Error when there is no `pool:` line (not status output). */
export function decodeZpoolStatus(text: string): ZpoolStatus {
  const lines = text.split('\n');
  const field = (key: string): string | undefined => {
    const re = new RegExp(`^\\s*${key}:\\s?(.*)$`);
    for (const l of lines) {
      const m = re.exec(l);
      if (m) return m[1]!.trim();
    }
    return undefined;
  };
  const pool = field('pool');
  if (pool === undefined) throw new Error('zpool status output has no "pool:" line');
  const scrubLine = field('scrub') ?? field('scan') ?? 'none requested';
  return { pool, state: field('state') ?? 'UNKNOWN', scrub: decodeScrubLine(scrubLine), devices: decodeConfig(lines) };
}

function decodeScrubLine(s: string): ScrubState {
  if (/in progress/.test(s)) return { kind: 'running' };
  if (/cancel|stopped/.test(s)) return { kind: 'canceled' };
  const m = /(?:completed|repaired).*?with (\d+) errors/.exec(s);
  if (m) return { kind: 'completed', errors: Number(m[1]) };
  return { kind: 'none' };
}

/** The leaf rows of the `config:` table: rows not followed by a more indented row. */
function decodeConfig(lines: readonly string[]): VdevCounters[] {
  const start = lines.findIndex((l) => /^\s*config:/.test(l));
  if (start < 0) return [];
  const rows: Array<{ indent: number; cols: string[] }> = [];
  let header = false;
  for (let i = start + 1; i < lines.length; i++) {
    const l = lines[i]!.replace(/\t/g, '        ');
    if (/^\s*errors:/.test(l)) break;
    if (l.trim() === '') continue;
    const cols = l.trim().split(/\s+/);
    if (cols[0] === 'NAME') {
      header = true;
      continue;
    }
    if (!header || cols.length < 5) continue;
    rows.push({ indent: l.length - l.trimStart().length, cols });
  }
  const out: VdevCounters[] = [];
  // The first row is the pool itself; a row is a leaf when the next one is not indented deeper.
  for (let i = 1; i < rows.length; i++) {
    const r = rows[i]!;
    const next = rows[i + 1];
    if (next && next.indent > r.indent) continue;
    const [name, state, read, write, cksum, ...rest] = r.cols;
    const tail = rest.join(' ');
    const rep = /([\d.]+[KMGTPE]?B?)\s+repaired/.exec(tail);
    out.push({ name: name!, state: state!, read: counter(read!), write: counter(write!), cksum: counter(cksum!), repairedBytes: rep ? size(rep[1]!) : 0 });
  }
  return out;
}

/** "12", "1.5K" (OpenZFS abbreviates large counters). */
function counter(s: string): number {
  return Math.round(size(s));
}

/** "4M", "128K", "0B", "1.50G": powers of 1024, as zpool prints them. */
function size(s: string): number {
  const m = /^([\d.]+)([KMGTPE]?)B?$/i.exec(s);
  if (!m) return 0;
  const exp = ' KMGTPE'.indexOf(m[2]!.toUpperCase() || ' ');
  return Math.round(Number(m[1]) * 1024 ** Math.max(0, exp));
}
