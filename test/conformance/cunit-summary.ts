/**
 * Reads the verbose output of libiscsi's `iscsi-test-cu` (CUnit basic mode): the "Run Summary"
 * table and, per test, whether it passed, failed or was skipped. CUnit counts a test that
 * calls CU_PASS("[SKIPPED] ...") as passed, so skips are found in each test's own output:
 * the text between "Test: NAME ..." and the "passed"/"FAILED" that ends it. libiscsi's own
 * log lines ("[FAILED] WRITE10 command failed ...") are bracketed and do not end a test.
 */

export interface CunitRow {
  readonly total: number;
  readonly ran: number;
  readonly passed: number | null;
  readonly failed: number;
  readonly inactive: number | null;
}

export interface TestOutcome {
  /** Suite.Test */
  readonly name: string;
  readonly result: 'passed' | 'failed' | 'skipped';
  /** For skipped tests: the first "[SKIPPED] reason" line; for failed tests: the first assertion line. */
  readonly detail: string;
}

export interface CunitReport {
  readonly suites: CunitRow;
  readonly tests: CunitRow;
  readonly asserts: CunitRow;
  readonly outcomes: readonly TestOutcome[];
  readonly passed: number;
  readonly failed: number;
  readonly skipped: number;
}

function row(text: string, kind: string): CunitRow {
  const m = new RegExp(`^\\s*(?:Type\\s+)?${kind}\\s+(\\d+)\\s+(\\d+)\\s+(\\d+|n/a)\\s+(\\d+)\\s+(\\d+|n/a)\\s*$`, 'm').exec(text);
  if (!m) throw new Error(`no "${kind}" row in the CUnit Run Summary`);
  const n = (s: string) => (s === 'n/a' ? null : Number(s));
  return { total: Number(m[1]), ran: Number(m[2]), passed: n(m[3]!), failed: Number(m[4]), inactive: n(m[5]!) };
}

/** Parses iscsi-test-cu's output; throws when there is no Run Summary (the run did not finish). */
export function parseCunit(text: string): CunitReport {
  const summaryAt = text.indexOf('Run Summary:');
  if (summaryAt < 0) throw new Error('no CUnit "Run Summary" in the output: the run did not complete');
  const summary = text.slice(summaryAt);
  const body = text.slice(0, summaryAt);
  const outcomes: TestOutcome[] = [];
  const marker = /^Suite: (\S+)|^  Test: (\S+) \.\.\./gm;
  const ends = /(?<!\[)\b(passed|FAILED)\b(?!\])/g;
  let suite = '';
  let m: RegExpExecArray | null;
  const starts: { name: string; at: number }[] = [];
  while ((m = marker.exec(body))) {
    if (m[1] !== undefined) suite = m[1];
    else starts.push({ name: `${suite}.${m[2]}`, at: m.index + m[0].length });
  }
  for (const { name, at } of starts) {
    ends.lastIndex = at;
    const e = ends.exec(body);
    const own = body.slice(at, e ? e.index : body.length);
    const after = e ? body.slice(e.index + e[0].length, body.indexOf('\n', e.index + e[0].length + 1) + 1 || body.length) : '';
    if (e?.[1] === 'FAILED') {
      const assertion = /^\s+\d+\. (.*)$/m.exec(body.slice(e.index))?.[1] ?? own.trim().split('\n')[0] ?? '';
      outcomes.push({ name, result: 'failed', detail: assertion.replace(/\s+\[SKIPPED\].*$/, '').trim() });
    } else if (own.includes('[SKIPPED]')) {
      outcomes.push({ name, result: 'skipped', detail: /\[SKIPPED\]\s*([^\n[]*)/.exec(own)![1]!.trim() });
    } else {
      void after;
      outcomes.push({ name, result: 'passed', detail: '' });
    }
  }
  const count = (r: TestOutcome['result']) => outcomes.filter((o) => o.result === r).length;
  return { suites: row(summary, 'suites'), tests: row(summary, 'tests'), asserts: row(summary, 'asserts'), outcomes, passed: count('passed'), failed: count('failed'), skipped: count('skipped') };
}

/** One line for logs and docs: "tests 230 run 230 passed 200 failed 0 skipped 30 (asserts 21076/21076)". */
export function summaryLine(r: CunitReport): string {
  return `tests ${r.tests.total}, run ${r.tests.ran}, passed ${r.passed}, failed ${r.failed} (CUnit: ${r.tests.failed}), skipped ${r.skipped}; asserts ${r.asserts.ran} run, ${r.asserts.failed} failed; suites ${r.suites.ran}`;
}
