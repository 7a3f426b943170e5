/**
 * `diskless volume` run for real (the built CLI in a child process) against temporary pools:
 * every subcommand, a send | receive pipe between processes and pools, resumable receives,
 * and bad input (exit 2, `error USAGE: … allowed: …`) versus failed operations (exit 1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, runPipeline } from '../../test/support/run-cli.js';
import { EmbeddedStorageDriver } from '../store/embedded/embedded-storage-driver.js';

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
    [['list', '--pool', join(dir, 'typo')], /^error USAGE: option --pool: value ".*typo" is not allowed \(no such directory\); allowed: an existing pool directory/],
    [['snapshot', 'v@s', '--pool', join(dir, 'typo')], /^error USAGE: option --pool: /],
    [['create', 'v'], /required option '--size <size>' not specified/],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ];
  for (const [args, message] of cases) {
    const r = await volume(args, 2);
    assert.match(r.stderr, message, args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
  }
});

/** Rows of `volume list -H -p …` as arrays of cells. */
async function rows(args: string[]): Promise<string[][]> {
  return (await volume(['list', '-H', '-p', ...args])).stdout.split('\n').filter(Boolean).map((l) => l.split('\t'));
}

test('volume --pool: every subcommand on an embedded pool, as zfs would answer', async (t) => {
  const dir = tempDir(t, 'dl-vol-pool-');
  const P = ['--pool', join(dir, 'pool')];
  const image = join(dir, 'golden.raw');
  writeFileSync(image, Buffer.alloc(2 * 1024 * 1024, 0x5a));

  await volume(['import', 'golden', image, ...P]);
  await volume(['create', 'scratch', '--size', '64MiB', '-b', '4096', ...P]);
  await volume(['snapshot', 'golden@v1', ...P]);
  await volume(['clone', 'golden@v1', 'pc1', ...P]);
  await volume(['clone', 'golden@v1', 'pc2', ...P]);

  const human = (await volume(['list', ...P])).stdout;
  assert.match(human, /^NAME +USED +REFER +WRITTEN +ORIGIN\n/);
  assert.match(human, /^golden +2M +2M +0B +-$/m);
  assert.match(human, /^pc1 +0B +2M +0B +golden@v1$/m);
  assert.deepEqual((await rows([...P])).map((r) => r[0]), ['golden', 'pc1', 'pc2', 'scratch']);
  assert.deepEqual(await rows(['-t', 'snapshot', ...P]), [['golden@v1', '0', String(2 * 1024 * 1024)]]);
  assert.deepEqual((await rows(['-t', 'all', ...P])).map((r) => [r[0], r[4]]), [['golden', '-'], ['golden@v1', '-'], ['pc1', 'golden@v1'], ['pc2', 'golden@v1'], ['scratch', '-']]);
  assert.deepEqual((await rows(['pc1', ...P])).map((r) => r[0]), ['pc1']);

  const snapInfo = (await volume(['info', 'golden@v1', '-H', ...P])).stdout;
  assert.match(snapInfo, /^clones\tpc1,pc2$/m);
  assert.match(snapInfo, /^guid\t[0-9a-f]+$/m);
  assert.match((await volume(['info', 'scratch', '-p', ...P])).stdout, /^volblocksize +4096$/m);

  // Dependency rules: a snapshot with clones or holds stays; a volume with snapshots needs -r.
  assert.match((await volume(['destroy', 'golden@v1', ...P], 1)).stderr, /^error STORE_HAS_DEPENDENTS: /);
  assert.match((await volume(['destroy', 'golden', ...P], 1)).stderr, /^error STORE_HAS_DEPENDENTS: /);
  await volume(['hold', 'keep', 'golden@v1', ...P]);
  assert.match((await volume(['info', 'golden@v1', '-H', ...P])).stdout, /^holds\tkeep$/m);
  assert.match((await volume(['hold', 'keep', 'golden@v1', ...P], 1)).stderr, /^error STORE_EXISTS: /);
  await volume(['release', 'keep', 'golden@v1', ...P]);
  assert.match((await volume(['release', 'keep', 'golden@v1', ...P], 1)).stderr, /^error STORE_NOT_FOUND: /);

  // Rollback: -r destroys the later snapshots.
  await volume(['snapshot', 'scratch@a', ...P]);
  await volume(['snapshot', 'scratch@b', ...P]);
  assert.match((await volume(['rollback', 'scratch@a', ...P], 1)).stderr, /^error STORE_HAS_DEPENDENTS: /);
  await volume(['rollback', 'scratch@a', '-r', ...P]);
  assert.deepEqual((await rows(['-t', 'snapshot', 'scratch', ...P])).map((r) => r[0]), ['scratch@a']);
  assert.match((await volume(['destroy', 'scratch@a', '-r', ...P], 2)).stderr, /^error USAGE: option -r: .*allowed: -r with a volume NAME/);
  await volume(['destroy', 'scratch', '-r', ...P]);

  // Promote: the clone takes over the origin snapshot; the old origin becomes its clone.
  await volume(['promote', 'pc1', ...P]);
  const promoted = await rows(['-t', 'all', ...P]);
  assert.deepEqual(promoted.map((r) => [r[0], r[4]]), [['golden', 'pc1@v1'], ['pc1', '-'], ['pc1@v1', '-'], ['pc2', 'pc1@v1']]);

  assert.equal((await volume(['scrub', ...P])).stdout, `scrub of pool: ${'2M'} checked, 0 bad copies found, 0 repaired, 0 unrecoverable\n`);
  assert.match((await volume(['scrub', 'pc2', '-p', ...P])).stdout, /^scrub of volume pc2: \d+ checked, 0 bad copies found, 0 repaired, 0 unrecoverable\n$/);
  assert.match((await volume(['snapshot', 'nope@x', ...P], 1)).stderr, /^error STORE_NOT_FOUND: /);
  assert.match((await volume(['create', 'pc2', '--size', '1M', ...P], 1)).stderr, /^error STORE_EXISTS: /);
});

test('volume send | receive: full and incremental streams through a pipe between processes into another pool; -o FILE; corrupt streams refused', async (t) => {
  const dir = tempDir(t, 'dl-vol-send-');
  const A = `--pool ${join(dir, 'a')}`;
  const B = `--pool ${join(dir, 'b')}`;
  const image = join(dir, 'golden.raw');
  const data = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < data.length; i += 4096) data.writeUInt32BE(i, i);
  writeFileSync(image, data);
  const sh = async (script: string, code = 0) => {
    const r = await runPipeline(script);
    assert.equal(r.code, code, `${script}\n${r.stderr}`);
    return { stdout: r.stdout.toString(), stderr: r.stderr };
  };
  await sh(`$DISKLESS volume import golden ${image} ${A} && $DISKLESS volume snapshot golden@v1 ${A}`);
  assert.equal((await sh(`$DISKLESS volume send golden@v1 ${A} | $DISKLESS volume receive copy ${B}`)).stdout, 'received copy@v1\n');

  // Change 64 KiB (through the driver in this process, the pool closed again before the CLI runs), snapshot, send only the difference.
  const driver = await EmbeddedStorageDriver.open({ pool: join(dir, 'a') });
  const device = await driver.open('golden');
  await device.write(1024 * 1024, Buffer.alloc(64 * 1024, 0xc3));
  await device.flush();
  await device.close();
  await driver.close();
  await sh(`$DISKLESS volume snapshot golden@v2 ${A}`);
  const incremental = join(dir, 'v1-v2.stream');
  await sh(`$DISKLESS volume send -i @v1 golden@v2 -o ${incremental} ${A}`);
  const full = join(dir, 'v2.stream');
  await sh(`$DISKLESS volume send golden@v2 ${A} > ${full}`);
  assert.ok(statSync(incremental).size < 128 * 1024, `incremental stream ${statSync(incremental).size} bytes for a 64 KiB change`);
  assert.ok(statSync(full).size > 3 * 1024 * 1024);
  await sh(`$DISKLESS volume receive copy ${B} < ${incremental}`);
  assert.deepEqual((await rows(['-t', 'snapshot', ...B.split(' ')])).map((r) => r[0]), ['copy@v1', 'copy@v2']);
  const received = await EmbeddedStorageDriver.open({ pool: join(dir, 'b') });
  const copy = await received.open('copy', { snapshot: 'v2' });
  const expected = Buffer.from(data);
  expected.fill(0xc3, 1024 * 1024, 1024 * 1024 + 64 * 1024);
  assert.ok((await copy.read(0, data.length)).equals(expected), 'copy@v2 holds golden@v2 byte for byte');
  await copy.close();
  await received.close();

  // A damaged stream is refused whole and leaves the volume as it was.
  const bad = readFileSync(full);
  const mid = bad.length >> 1;
  bad[mid] = bad[mid]! ^ 0xff;
  const refused = await runCli(['volume', 'receive', 'other', ...B.split(' ')], { input: bad });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^error STORE_STREAM_INVALID: /);
  assert.deepEqual((await rows(B.split(' '))).map((r) => r[0]), ['copy']);
  assert.match((await sh(`$DISKLESS volume send -i golden@v2 golden@v1 ${A} > /dev/null`, 1)).stderr, /^error /);
  assert.match((await sh(`$DISKLESS volume send -i other@v1 golden@v2 ${A} > /dev/null`, 2)).stderr, /^error USAGE: option -i: value "other@v1"/);
});

test('volume receive -s: an interrupted stream prints the resume token; send -t resumes it; -A aborts one', async (t) => {
  const dir = tempDir(t, 'dl-vol-resume-');
  const A = `--pool ${join(dir, 'a')}`;
  const B = `--pool ${join(dir, 'b')}`;
  const image = join(dir, 'golden.raw');
  writeFileSync(image, Buffer.alloc(4 * 1024 * 1024, 0x77));
  const sh = async (script: string, code = 0) => {
    const r = await runPipeline(script);
    assert.equal(r.code, code, `${script}\n${r.stderr}`);
    return { stdout: r.stdout.toString(), stderr: r.stderr };
  };
  await sh(`$DISKLESS volume import golden ${image} ${A} && $DISKLESS volume snapshot golden@v1 ${A}`);
  // The stream stops after 1 MiB: the receiver keeps what arrived and prints the token alone on stdout.
  const cut = await sh(`$DISKLESS volume send golden@v1 ${A} | head -c 1048576 | $DISKLESS volume receive -s copy ${B}`, 1);
  const token = cut.stdout.trim();
  assert.match(token, /^\S{16,}$/, cut.stdout);
  assert.match(cut.stderr, /^error STORE_RECEIVE_INTERRUPTED: /m);
  assert.match(cut.stderr, new RegExp(`resume it with: diskless volume send -t ${token.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} VOLUME@SNAP \\| diskless volume receive -s copy`));
  assert.equal((await sh(`$DISKLESS volume send -t ${token} golden@v1 ${A} | $DISKLESS volume receive -s copy ${B}`)).stdout, 'received copy@v1\n');
  // A reader that goes away early: the sender says so (exit 1), not a crash.
  const early = await sh(`$DISKLESS volume send golden@v1 ${A} | head -c 100 > /dev/null; exit \${PIPESTATUS[0]}`, 1);
  assert.match(early.stderr, /^error OUTPUT_CLOSED: standard output closed after \d+ bytes/);
  assert.deepEqual((await rows(['-t', 'all', ...B.split(' ')])).map((r) => r[0]), ['copy', 'copy@v1']);
  assert.match((await sh(`$DISKLESS volume send -t ${token} -i @v0 golden@v1 ${A} > /dev/null`, 2)).stderr, /^error USAGE: option -t: .*not both/);

  // Interrupted again into a new name, then thrown away with -A: nothing is left, and the name is free.
  const second = await sh(`$DISKLESS volume send golden@v1 ${A} | head -c 1048576 | $DISKLESS volume receive -s other ${B}`, 1);
  assert.match(second.stdout.trim(), /^\S{16,}$/);
  assert.match((await sh(`$DISKLESS volume receive -A -s other ${B}`, 2)).stderr, /^error USAGE: option -A: /);
  assert.equal((await sh(`$DISKLESS volume receive -A other ${B}`)).stdout, 'aborted the partial receive into other\n');
  assert.deepEqual((await rows(B.split(' '))).map((r) => r[0]), ['copy']);
  assert.match((await sh(`$DISKLESS volume receive -A other ${B}`, 1)).stderr, /^error STORE_NOT_FOUND: /);
  // Without -s an interrupted receive leaves nothing behind and prints no token.
  const plain = await sh(`$DISKLESS volume send golden@v1 ${A} | head -c 1048576 | $DISKLESS volume receive third ${B}`, 1);
  assert.equal(plain.stdout, '');
  assert.deepEqual((await rows(B.split(' '))).map((r) => r[0]), ['copy']);
});

test('volume send refuses to write a binary stream to a terminal, receive to read one from it; send -o leaves no partial file', async (t) => {
  const dir = tempDir(t, 'dl-vol-tty-');
  const P = `--pool ${join(dir, 'p')}`;
  const sh = async (script: string, code = 0) => {
    const r = await runPipeline(script);
    assert.equal(r.code, code, `${script}\n${r.stderr}`);
    return { stdout: r.stdout.toString(), stderr: r.stderr };
  };
  await sh(`$DISKLESS volume create v --size 1M ${P} && $DISKLESS volume snapshot v@s ${P}`);
  // script(1) gives the command a pseudo-terminal for stdin and stdout.
  const tty = await sh(`script -qec "$DISKLESS volume send v@s ${P}" /dev/null`, 2);
  assert.match(tty.stdout, /error USAGE: standard output: value "a terminal" is not allowed \(a send stream is binary\); allowed: a pipe or a file/);
  const ttyIn = await sh(`script -qec "$DISKLESS volume receive w ${P}" /dev/null`, 2);
  assert.match(ttyIn.stdout, /error USAGE: standard input: value "a terminal" is not allowed; allowed: a send stream/);
  const target = join(dir, 'out.stream');
  assert.match((await sh(`$DISKLESS volume send v@missing -o ${target} ${P}`, 1)).stderr, /^error STORE_NOT_FOUND: /);
  assert.throws(() => statSync(target), /ENOENT/);
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes('partial')), [], 'no temporary file left');
  await sh(`$DISKLESS volume send v@s -o ${target} ${P}`);
  assert.ok(statSync(target).size > 0);
  assert.match((await sh(`$DISKLESS volume send v@s -o ${join(dir, 'no', 'such', 'dir')} ${P}`, 2)).stderr, /^error USAGE: option -o: .*ENOENT/);
});
