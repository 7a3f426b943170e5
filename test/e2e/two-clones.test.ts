/**
 * Two diskless Linux VMs boot from two writable clones of one golden image served from the
 * embedded pool (config `storage: { driver: embedded }`, `volumes[].clone: golden@base`), and
 * each writes to its own root: /init mounts the ext4 root read-write, writes its node name to
 * /WRITTEN, syncs (the kernel sends SYNCHRONIZE CACHE) and unmounts before powering off.
 *
 * The VMs boot one after the other with the server stopped in between, so that after each
 * boot the pool can be opened in-process and checked through the driver: the golden volume
 * and its snapshot still hash as the image they were imported from, the clone that did not
 * boot is byte-for-byte what it was, the clone that booted holds its own /WRITTEN and a
 * clean ext4 (debugfs, e2fsck -n), and stays cheap (a few MiB used, the rest shared).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { labUp } from '../../src/cli/lab-command.js';
import type { ConsoleChunk } from '../../src/lab/console-transcript.js';
import { Lab } from '../../src/lab/lab.js';
import { INIT_LINES, INIT_PARAMS, buildLinuxBootFiles, writeExt4Image } from '../../src/lab/linux-initramfs.js';
import { runBoot, type BootRun } from '../../src/lab/run-boot.js';
import { EmbeddedStorageDriver } from '../../src/store/embedded/embedded-storage-driver.js';
import { digest } from '../store/conformance/conformance-support.js';

const execFileP = promisify(execFile);
const NS = 'dl4d-two';
const IQN_PREFIX = 'iqn.2026-11.io.diskless';
const MARKER = 'DISKLESS-GOLDEN-ROOT';
/** /init prints this after unmounting the root, just before powering off: the run ends there, with the file system clean. */
const DONE = 'diskless-init: done';
const ROOT_SIZE = 64 << 20;
const NODES = [
  { name: 'node-a', mac: '52:54:00:d4:0d:0a' },
  { name: 'node-b', mac: '52:54:00:d4:0d:0b' },
] as const;

function bootScript(volume: string, written: string): string {
  const args = [
    'console=ttyS0', 'quiet',
    `${INIT_PARAMS.initiator}=iqn.1993-08.org.debian:01:${volume}`, `${INIT_PARAMS.target}=${IQN_PREFIX}:${volume}`, `${INIT_PARAMS.portal}=10.77.0.1`, `${INIT_PARAMS.port}=3260`,
    `${INIT_PARAMS.write}=${written}`,
  ];
  return ['#!ipxe', `kernel http://10.77.0.1:8080/files/vmlinuz ${args.join(' ')}`, 'initrd http://10.77.0.1:8080/files/initrd.gz', 'boot', ''].join('\n');
}

const consoleText = (run: BootRun) => run.transcript.map((c: ConsoleChunk) => c.text).join('');

/** Copies a volume out of the pool into a raw file (for debugfs / e2fsck). */
async function exportVolume(driver: EmbeddedStorageDriver, volume: string, path: string): Promise<void> {
  const dev = await driver.open(volume, { readOnly: true });
  const fh = await open(path, 'w');
  try {
    const buf = Buffer.alloc(1 << 20);
    for (let at = 0; at < dev.size; at += buf.length) {
      await dev.readInto(at, buf);
      await fh.write(buf, 0, buf.length, at);
    }
  } finally {
    await fh.close();
    await dev.close();
  }
}

/** The contents of /WRITTEN in the ext4 volume (undefined when there is none), after e2fsck -n says it is clean. */
async function writtenFile(driver: EmbeddedStorageDriver, volume: string, scratch: string): Promise<string | undefined> {
  const raw = join(scratch, `${volume}.raw`);
  await exportVolume(driver, volume, raw);
  try {
    const fsck = await execFileP('e2fsck', ['-fn', raw]).then(
      () => 0,
      (e: { code?: number; stdout?: string }) => `${e.code}: ${e.stdout ?? ''}`,
    );
    assert.equal(fsck, 0, `e2fsck -fn on ${volume}`);
    const { stdout, stderr } = await execFileP('debugfs', ['-R', 'cat /WRITTEN', raw]);
    return /File not found/.test(stderr) ? undefined : stdout.trim();
  } finally {
    await rm(raw, { force: true });
  }
}

/** Opens the pool once the stopped server has released its lock. */
async function openPool(pool: string): Promise<EmbeddedStorageDriver> {
  for (let i = 0; ; i++) {
    try {
      return await EmbeddedStorageDriver.open({ pool });
    } catch (err) {
      if (i >= 50 || (err as { code?: string }).code !== 'STORE_BUSY') throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

test('two Linux VMs boot from two clones of one golden image and each writes its own disk; the golden snapshot and the other clone are unchanged', { timeout: 420_000 }, async (t) => {
  const workDir = await mkdtemp(join(tmpdir(), 'dl4d-two-'));
  const dataDir = join(workDir, 'data');
  const pool = join(dataDir, 'pool');
  t.after(async () => {
    await new Lab({ namespace: NS }).down();
    await rm(workDir, { recursive: true, force: true });
  });
  await new Lab({ namespace: NS }).down();

  await buildLinuxBootFiles({ outDir: join(dataDir, 'http'), log: (l) => t.diagnostic(l) });
  const rootImage = join(workDir, 'root.img');
  await writeExt4Image(rootImage, ROOT_SIZE, { MARKER: `${MARKER}\n` });
  const golden = createHash('sha256').update(await readFile(rootImage)).digest('hex');

  const doc = {
    server: { address: '10.77.0.1', dataDir },
    iscsi: { iqnPrefix: IQN_PREFIX },
    storage: { driver: 'embedded', pool },
    nodes: NODES.map((n) => ({ name: n.name, mac: n.mac, boot: 'script', volume: n.name, script: bootScript(n.name, `written-by-${n.name}`) })),
    volumes: [{ name: 'golden', source: rootImage, readOnly: true }, ...NODES.map((n) => ({ name: n.name, clone: 'golden@base' }))],
  };
  const configPath = join(workDir, 'diskless.yaml');
  await mkdir(dataDir, { recursive: true });
  await writeFile(configPath, stringify(doc));
  const sink = new Writable({ write: (_c, _e, cb) => cb() });

  const before = new Map<string, string>();
  before.set('node-a', golden);
  before.set('node-b', golden);
  for (const [i, node] of NODES.entries()) {
    const other = NODES[1 - i]!.name;
    const { lab } = await labUp({ namespace: NS, config: configPath, out: sink });
    const tap = await lab.addTap();
    const run = await runBoot({ namespace: NS, tap, mac: node.mac, timeoutMs: 150_000, marker: DONE });
    const text = consoleText(run);
    const explain = async () => `outcome ${run.outcome} ${run.failure?.line ?? ''}\nconsole: ${text.slice(-2500)}\nserver: ${(await readFile(lab.logPath('serve'), 'utf8').catch(() => '')).slice(-2000)}`;
    assert.equal(run.outcome, 'marker', await explain());
    assert.ok(text.includes(`${INIT_LINES.mounted} read-write`), await explain());
    assert.ok(text.includes(`${INIT_LINES.wrote} written-by-${node.name}`), await explain());
    assert.ok(text.includes(MARKER), `the golden image's marker file was read from the clone: ${await explain()}`);
    t.diagnostic(`${node.name}: booted, wrote and unmounted its root in ${(run.endedMs / 1000).toFixed(1)} s`);
    await lab.down();

    const driver = await openPool(pool);
    try {
      assert.equal(await digest(driver, 'golden', 'base'), golden, `after ${node.name}: golden@base is the imported image`);
      assert.equal(await digest(driver, 'golden'), golden, `after ${node.name}: the golden volume is unchanged`);
      assert.equal(await digest(driver, other), before.get(other), `after ${node.name}: the other clone ${other} is unchanged`);
      const mine = await digest(driver, node.name);
      assert.notEqual(mine, before.get(node.name), `${node.name} changed`);
      before.set(node.name, mine);
      assert.equal(await writtenFile(driver, node.name, workDir), `written-by-${node.name}`, `${node.name}'s own /WRITTEN`);
      assert.equal(await writtenFile(driver, 'golden', workDir), undefined, 'no /WRITTEN in the golden image');
      const snaps = await driver.listSnapshots('golden');
      assert.deepEqual(snaps.map((s) => [s.name, s.clones]), [['base', ['node-a', 'node-b']]]);
      const info = await driver.info(node.name);
      assert.deepEqual(info.origin, { kind: 'clone', volume: 'golden', snapshot: 'base' });
      assert.ok(info.used < 8 << 20, `${node.name} uses ${info.used} bytes of its own: a clone shares the golden image`);
      t.diagnostic(`${node.name}: ${info.used} bytes used, ${info.referenced} referenced; golden ${(await driver.info('golden')).used} used`);
    } finally {
      await driver.close();
    }
  }
  assert.notEqual(before.get('node-a'), before.get('node-b'), 'the two clones diverged');
});
