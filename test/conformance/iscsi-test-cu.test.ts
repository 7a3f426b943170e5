/**
 * libiscsi's conformance suite (Debian libiscsi-bin 1.19, `iscsi-test-cu --test=ALL -d`)
 * against `diskless export iscsi` on a fresh 64 MiB sparse file, three ways: no
 * authentication, one-way CHAP, and CRC32C header digests (libiscsi 1.19 negotiates
 * HeaderDigest only: it always offers DataDigest=None, so data digests are exercised by our
 * own tests, not here). Each run prints its summary line; the test asserts zero failures and
 * fewer skipped tests than tgt gives on this machine with the same command (docs/iscsi.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCunit, summaryLine, type CunitReport } from './cunit-summary.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const IQN = 'iqn.2026-11.io.diskless:conformance';
const SIZE = 64 * 1024 * 1024;
/** Measured once with the same command against `tgtd -f -C 21` on a 64 MiB file (docs/iscsi.md). */
const TGT = { tests: 230, failed: 8, skipped: 62 } as const;
/** One full run takes ~15-25 s here; the bound is for a wedged target, not a slow machine. */
const RUN_TIMEOUT_MS = 240_000;
const CHAP_USER = 'conformance';
const CHAP_SECRET = 'conformance-secret-1';

interface Export {
  port: number;
  readonly child: ChildProcess;
  stderr: string;
}

/** Starts `diskless export iscsi` on a fresh sparse file and waits for its "listening on" line. */
async function startExport(dir: string, name: string, extra: string[]): Promise<Export> {
  const file = join(dir, `${name}.img`);
  await writeFile(file, '');
  const fh = await open(file, 'r+');
  await fh.truncate(SIZE);
  await fh.close();
  const child = spawn(process.execPath, [cli, 'export', 'iscsi', file, '--iqn', IQN, '--listen', '127.0.0.1:0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const e: Export = { child, port: 0, stderr: '' };
  child.stderr!.on('data', (d) => (e.stderr += d));
  const port = await new Promise<number>((done, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`export did not start: ${out} ${e.stderr}`)), 15_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        done(Number(m[1]));
      }
    });
    child.once('exit', (code) => fail(new Error(`export exited with ${code}: ${e.stderr}`)));
  });
  e.port = port;
  return e;
}

async function stopExport(e: Export): Promise<number | null> {
  if (e.child.exitCode !== null) return e.child.exitCode;
  const exited = new Promise<number | null>((done) => e.child.once('exit', (code) => done(code)));
  e.child.kill('SIGTERM');
  const timer = setTimeout(() => e.child.kill('SIGKILL'), 10_000);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

/** Runs the whole suite against `url`; resolves with the parsed report and the wall time. */
function runSuite(url: string): Promise<{ report: CunitReport; seconds: number; output: string }> {
  return new Promise((done, fail) => {
    const started = Date.now();
    const child = spawn('iscsi-test-cu', ['--test=ALL', '-d', url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('error', (err) => fail(new Error(`cannot run iscsi-test-cu (Debian package libiscsi-bin, installed by make): ${err.message}`)));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const seconds = (Date.now() - started) / 1000;
      if (signal) return fail(new Error(`iscsi-test-cu killed by ${signal} after ${seconds.toFixed(0)} s (bound ${RUN_TIMEOUT_MS / 1000} s); last output:\n${output.slice(-2000)}`));
      try {
        done({ report: parseCunit(output), seconds, output });
      } catch (err) {
        fail(new Error(`${(err as Error).message} (exit ${code}); last output:\n${output.slice(-2000)}`));
      }
    });
  });
}

async function conformance(t: { diagnostic(msg: string): void; after(fn: () => Promise<void>): void }, label: string, exportArgs: string[], url: (port: number) => string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'dl-conformance-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const e = await startExport(dir, label, exportArgs);
  let result;
  try {
    result = await runSuite(url(e.port));
  } finally {
    const code = await stopExport(e);
    assert.equal(code, 0, `the export stops cleanly on SIGTERM: ${e.stderr}`);
  }
  const { report, seconds } = result;
  const line = `iscsi-test-cu ${label}: ${summaryLine(report)} in ${seconds.toFixed(1)} s (tgt: ${TGT.tests} tests, ${TGT.failed} failed, ${TGT.skipped} skipped)`;
  console.log(line);
  t.diagnostic(line);
  const failures = report.outcomes.filter((o) => o.result === 'failed').map((o) => `${o.name}: ${o.detail}`);
  const skips = new Map<string, number>();
  for (const o of report.outcomes) if (o.result === 'skipped') skips.set(o.detail, (skips.get(o.detail) ?? 0) + 1);
  t.diagnostic(`skipped: ${[...skips].map(([why, n]) => `${n}× ${why}`).join('; ')}`);
  assert.equal(report.tests.ran, report.tests.total, 'every test ran');
  assert.equal(report.outcomes.length, report.tests.ran, 'every test has an outcome');
  assert.deepEqual(failures, [], `no failures (CUnit counted ${report.tests.failed})`);
  assert.equal(report.tests.failed, 0);
  assert.ok(report.skipped < TGT.skipped, `fewer skips than tgt: ${report.skipped} vs ${TGT.skipped}`);
  assert.equal(e.stderr.includes('unexpected error'), false, e.stderr);
}

test('iscsi-test-cu --test=ALL, no authentication: 0 failures, fewer skips than tgt', { timeout: RUN_TIMEOUT_MS + 30_000 }, async (t) => {
  await conformance(t, 'no-auth', [], (port) => `iscsi://127.0.0.1:${port}/${IQN}/0`);
});

test('iscsi-test-cu --test=ALL, one-way CHAP: 0 failures, fewer skips than tgt', { timeout: RUN_TIMEOUT_MS + 30_000 }, async (t) => {
  await conformance(t, 'chap', ['--chap', `${CHAP_USER}:${CHAP_SECRET}`], (port) => `iscsi://${CHAP_USER}%${CHAP_SECRET}@127.0.0.1:${port}/${IQN}/0`);
});

test('iscsi-test-cu --test=ALL, CRC32C header digest required by the initiator: 0 failures, fewer skips than tgt', { timeout: RUN_TIMEOUT_MS + 30_000 }, async (t) => {
  await conformance(t, 'digests', [], (port) => `iscsi://127.0.0.1:${port}/${IQN}/0?header_digest=crc32c`);
});
