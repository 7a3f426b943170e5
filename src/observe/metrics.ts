/**
 * Counters and gauges with labels, rendered in the Prometheus text format at /metrics.
 * One `Metrics` instance is built in main.ts and passed to every server in its options;
 * nothing here is module-level state, so tests build their own and read it back.
 */
export type Labels = Readonly<Record<string, string>>;

interface Series {
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly values: Map<string, { labels: Labels; value: number }>;
}

/**
 * Label sets are usually built once by their owner and passed on every call (hot paths keep
 * them in fields): the key is computed once per object. Label objects are read-only, so the
 * cached key stays right.
 */
const keys = new WeakMap<Labels, string>();

function labelKey(labels: Labels): string {
  const cached = keys.get(labels);
  if (cached !== undefined) return cached;
  const names = Object.keys(labels);
  if (names.length === 0) return ''; // `{}` literals: nothing worth remembering
  const key = names
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
  keys.set(labels, key);
  return key;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export class Metrics {
  private readonly series = new Map<string, Series>();

  /** Adds `by` (default 1) to a counter. Called on hot paths: O(labels) work, no allocation of new series after the first call. */
  inc(name: string, labels: Labels = {}, by = 1, help = name): void {
    const s = this.get(name, 'counter', help);
    const key = labelKey(labels);
    const cur = s.values.get(key);
    if (cur) cur.value += by;
    else s.values.set(key, { labels: { ...labels }, value: by });
  }

  /** Sets a gauge to `value`. */
  set(name: string, value: number, labels: Labels = {}, help = name): void {
    const s = this.get(name, 'gauge', help);
    s.values.set(labelKey(labels), { labels: { ...labels }, value });
  }

  /** Current value of one series, 0 when it was never touched. */
  value(name: string, labels: Labels = {}): number {
    return this.series.get(name)?.values.get(labelKey(labels))?.value ?? 0;
  }

  /** Sum over every label set of a series. */
  total(name: string): number {
    let sum = 0;
    for (const v of this.series.get(name)?.values.values() ?? []) sum += v.value;
    return sum;
  }

  /** Prometheus text exposition format 0.0.4. */
  render(): string {
    const out: string[] = [];
    for (const [name, s] of this.series) {
      out.push(`# HELP ${name} ${s.help}`, `# TYPE ${name} ${s.type}`);
      for (const { labels, value } of s.values.values()) {
        const ls = Object.entries(labels)
          .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
          .join(',');
        out.push(ls ? `${name}{${ls}} ${value}` : `${name} ${value}`);
      }
    }
    return out.join('\n') + '\n';
  }

  private get(name: string, type: Series['type'], help: string): Series {
    let s = this.series.get(name);
    if (!s) {
      s = { help, type, values: new Map() };
      this.series.set(name, s);
    }
    return s;
  }
}
