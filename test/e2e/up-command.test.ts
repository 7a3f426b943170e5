/**
 * `diskless up` as `make up` runs it: the lab comes up, one VM boots to the marker with its
 * timeline printed, the server keeps running until SIGINT (Ctrl-C), then everything is removed
 * and the command exits 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Lab } from '../../src/lab/lab.js';
import { namespaceExists } from '../../src/lab/netns.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const NS = 'dl-e2e-up';

test('diskless up boots a VM, keeps serving until SIGINT, then removes the lab and exits 0', { timeout: 120_000 }, async (t) => {
  await new Lab({ namespace: NS }).down();
  t.after(() => new Lab({ namespace: NS }).down());
  const child = spawn(process.execPath, [CLI, 'up', '--namespace', NS, '--timeout', '60'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = once(child, 'exit');
  const deadline = Date.now() + 90_000;
  while (!out.includes('keeps running') && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  assert.match(out, /reached the marker in \d+\.\d+ s/, out);
  assert.match(out, /^marker\s/m);
  // Still serving a few seconds later: the command did not exit on its own.
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(child.exitCode, null, `up exited early: ${out}`);
  assert.equal(await namespaceExists(NS), true);
  child.kill('SIGINT');
  const [code] = (await exited) as [number | null];
  assert.equal(code, 0, out);
  assert.match(out, /lab dl-e2e-up removed/);
  assert.equal(await namespaceExists(NS), false);
});
