/**
 * `diskless volume --zfs DATASET` and `diskless export iscsi --zfs` for real against zfs-fuse
 * (LAB.md §6): one pool on a sparse file (prefix dl4c, destroyed afterwards), the CLI run as a
 * child process. Replication between two datasets through a send | receive pipe.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestPool, type TestPool } from '../../test/support/zfs-fuse.js';
import { CLI, runCli, runPipeline } from '../../test/support/run-cli.js';
import { runTool } from '../../test/support/run-tool.js';

let pool: TestPool;
/**
 * One zfs-fuse daemon serves the whole machine: a command that takes 1 s alone can wait a
 * minute behind other tests' pools. The bound is for a wedged daemon, not a busy one.
 */
const ZFS_TIMEOUT_MS = 300_000;

before(async () => {
  pool = await createTestPool({ prefix: 'dl4c-cli', size: 256 * 1024 * 1024 });
});

after(async () => {
  await pool?.destroy();
});

async function volume(args: string[], code = 0): Promise<{ stdout: string; stderr: string }> {
  const r = await runCli(['volume', ...args], { timeoutMs: ZFS_TIMEOUT_MS });
  assert.equal(r.code, code, `volume ${args.join(' ')}: ${r.stderr}`);
  return { stdout: r.stdout.toString(), stderr: r.stderr };
}

test('volume --zfs: create, import, snapshot, clone, list, hold, send | receive into a second dataset, destroy', async () => {
  const Z = ['--zfs', `${pool.name}/a`];
  const image = join(pool.dir, 'golden.raw');
  writeFileSync(image, Buffer.alloc(1024 * 1024, 0x5a));
  await volume(['import', 'golden', image, ...Z]);
  await volume(['create', 'blank', '--size', '8M', ...Z]);
  await volume(['snapshot', 'golden@v1', ...Z]);
  await volume(['clone', 'golden@v1', 'pc1', ...Z]);
  const listed = (await volume(['list', '-t', 'all', '-H', ...Z])).stdout.split('\n').filter(Boolean).map((l) => l.split('\t'));
  assert.deepEqual(listed.map((r) => [r[0], r[4]]), [['blank', '-'], ['golden', '-'], ['golden@v1', '-'], ['pc1', 'golden@v1']]);
  await volume(['hold', 'keep', 'golden@v1', ...Z]);
  assert.match((await volume(['destroy', 'golden@v1', ...Z], 1)).stderr, /^error STORE_(HELD|HAS_DEPENDENTS): /);
  await volume(['release', 'keep', 'golden@v1', ...Z]);

  const B = `--zfs ${pool.name}/b`;
  const piped = await runPipeline(`$DISKLESS volume send golden@v1 ${Z.join(' ')} | $DISKLESS volume receive copy ${B}`, ZFS_TIMEOUT_MS);
  assert.equal(piped.code, 0, piped.stderr);
  assert.equal(piped.stdout.toString(), 'received copy@v1\n');
  const copy = (await volume(['info', 'copy@v1', '-H', '-p', ...B.split(' ')])).stdout;
  assert.match(copy, /^referenced\t\d+$/m);

  await volume(['destroy', 'pc1', ...Z]);
  await volume(['destroy', 'golden', '-r', ...Z]);
  assert.deepEqual((await volume(['list', '-H', ...Z])).stdout.split('\n').filter(Boolean).map((l) => l.split('\t')[0]), ['blank']);
});

test('export iscsi --zfs VOLUME: qemu-io reads and writes the zfs volume', async () => {
  const Z = ['--zfs', `${pool.name}/e`];
  await volume(['create', 'disk', '--size', '16M', ...Z]);
  const iqn = 'iqn.2026-11.io.diskless:zfs';
  const child = spawn(process.execPath, [CLI, 'export', 'iscsi', 'disk', ...Z, '--iqn', iqn, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  try {
    const port = await new Promise<number>((done, fail) => {
      let out = '';
      const timer = setTimeout(() => fail(new Error(`export did not start: ${out} ${err}`)), ZFS_TIMEOUT_MS);
      child.stdout.on('data', (d) => {
        out += d;
        const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          assert.match(out, new RegExp(`^exporting volume disk of zfs ${pool.name}/e \\(16777216 bytes, 512-byte blocks`));
          done(Number(m[1]));
        }
      });
      child.once('exit', (code) => fail(new Error(`export exited with ${code}: ${err}`)));
    });
    const io = await runTool('qemu-io', ['-f', 'raw', '-c', 'write -P 0x42 1M 256k', '-c', 'flush', '-c', 'read -P 0x42 1M 256k', '-c', 'read -P 0 0 64k', `iscsi://127.0.0.1:${port}/${iqn}/0`]);
    assert.equal(io.code, 0, io.out);
    assert.doesNotMatch(io.out, /Pattern verification failed|error/i);
  } finally {
    const exited = new Promise<number | null>((done) => (child.exitCode !== null ? done(child.exitCode) : child.once('exit', (code) => done(code))));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, err);
  }
});
