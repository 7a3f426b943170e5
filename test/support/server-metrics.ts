import type { Lab } from '../../src/lab/lab.js';

/**
 * Reading the metrics of a `diskless serve` that runs inside a lab namespace, for e2e tests:
 * the test process is outside the namespace, so the fetch runs in a short-lived Node process
 * inside it. One GET per call (~100 ms: a Node start-up).
 */

/** The server's Prometheus text from GET /metrics on `lab.address:port` (default 8080, config `http.port`). */
export async function labServerMetrics(lab: Lab, port = 8080): Promise<string> {
  const script = `fetch('http://${lab.address}:${port}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`;
  return lab.exec(process.execPath, ['-e', script]);
}

const SAMPLE_RE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL_RE = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/**
 * The sum of every sample of `name` in Prometheus `text` whose labels include all of `labels`
 * (label order does not matter; other labels may be present); 0 when none matches.
 */
export function metricValue(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = SAMPLE_RE.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? '').matchAll(LABEL_RE)].map((l) => [l[1]!, l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum += Number(m[3]);
  }
  return sum;
}
