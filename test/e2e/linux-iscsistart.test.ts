/**
 * Interop with open-iscsi: a real diskless Linux boots in the lab from our stack alone. iPXE
 * (the e1000 ROM) fetches a `boot: script` that loads Debian's kernel and an initramfs over our
 * HTTP server; the initramfs's /init takes a lease from our DHCP server, logs in to our iSCSI
 * target with open-iscsi's `iscsistart` (its own initiator name, one-way CHAP), mounts the
 * ext4 volume and prints the marker file from it. A wrong CHAP secret makes iscsistart fail.
 *
 * The kernel package is fetched with `apt-get download` into /var/cache/diskless-lab on the
 * first run (~70 MB) and reused afterwards; busybox-static and open-iscsi come from the host
 * (scripts/install-deps.sh) or the same cache.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { labUp } from '../../src/cli/lab-command.js';
import { BootStage } from '../../src/lab/boot-timeline.js';
import type { ConsoleChunk } from '../../src/lab/console-transcript.js';
import { Lab } from '../../src/lab/lab.js';
import { INIT_LINES, INIT_PARAMS, buildLinuxBootFiles, writeExt4Image } from '../../src/lab/linux-initramfs.js';
import { runBoot, type BootRun } from '../../src/lab/run-boot.js';

const NS = 'dk-linux';
const MARKER = 'DISKLESS-LINUX-OK';
const IQN_PREFIX = 'iqn.2026-11.io.diskless';
const TARGET = `${IQN_PREFIX}:linuxroot`;
/** Not the iqnPrefix-derived name iPXE would use: the one we hand to iscsistart -i. */
const INITIATOR = 'iqn.1993-08.org.debian:01:dk-linux-node';
const CHAP = { username: 'linux-node', secret: 'open-iscsi-chap-secret' };
const GOOD_MAC = '52:54:00:d6:00:01';
const BAD_MAC = '52:54:00:d6:00:02';

function bootScript(secret: string): string {
  const args = [
    'console=ttyS0', 'quiet',
    `${INIT_PARAMS.initiator}=${INITIATOR}`, `${INIT_PARAMS.target}=${TARGET}`, `${INIT_PARAMS.portal}=10.77.0.1`, `${INIT_PARAMS.port}=3260`,
    `${INIT_PARAMS.user}=${CHAP.username}`, `${INIT_PARAMS.secret}=${secret}`,
  ];
  return ['#!ipxe', `kernel http://10.77.0.1:8080/files/vmlinuz ${args.join(' ')}`, 'initrd http://10.77.0.1:8080/files/initrd.gz', 'boot', ''].join('\n');
}

/** ms since power-on of the console chunk that completes the first occurrence of `text`. */
function timeOf(transcript: readonly ConsoleChunk[], text: string): number | undefined {
  let all = '';
  const ends: number[] = [];
  for (const c of transcript) {
    all += c.text;
    ends.push(all.length);
  }
  const at = all.indexOf(text);
  if (at < 0) return undefined;
  const end = at + text.length;
  return transcript[ends.findIndex((e) => e >= end)]!.atMs;
}

function consoleText(run: BootRun): string {
  return run.transcript.map((c) => c.text).join('');
}

interface LogLine {
  msg?: string;
  initiator?: string;
  target?: string;
  auth?: string;
  status?: number;
  reason?: string;
}

async function serverLog(lab: Lab): Promise<LogLine[]> {
  const text = await readFile(lab.logPath('serve'), 'utf8').catch(() => '');
  return text.split('\n').flatMap((l) => {
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });
}

test('a diskless Debian Linux logs in with open-iscsi iscsistart (CHAP) and mounts its ext4 root from our target; a wrong secret fails', { timeout: 240_000 }, async (t) => {
  const workDir = await mkdtemp(join(tmpdir(), 'dk-linux-'));
  const dataDir = join(workDir, 'data');
  t.after(async () => {
    await new Lab({ namespace: NS }).down();
    await rm(workDir, { recursive: true, force: true });
  });
  await new Lab({ namespace: NS }).down();

  const built = Date.now();
  const files = await buildLinuxBootFiles({ outDir: join(dataDir, 'http'), log: (l) => t.diagnostic(l) });
  const rootImage = join(workDir, 'root.img');
  await writeExt4Image(rootImage, 64 << 20, { MARKER: `${MARKER}\n` });
  t.diagnostic(`kernel ${files.kernelRelease}, ${files.modules.length} modules, boot files + root image in ${Date.now() - built} ms`);

  const doc = {
    server: { address: '10.77.0.1', dataDir },
    iscsi: { iqnPrefix: IQN_PREFIX },
    nodes: [
      { name: 'linux', mac: GOOD_MAC, boot: 'script', volume: 'linuxroot', chap: CHAP, script: bootScript(CHAP.secret) },
      { name: 'intruder', mac: BAD_MAC, boot: 'script', script: bootScript('not-the-chap-secret') },
    ],
    volumes: [{ name: 'linuxroot', source: rootImage }],
  };
  const configPath = join(workDir, 'diskless.yaml');
  await mkdir(dataDir, { recursive: true });
  await writeFile(configPath, stringify(doc));
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const { lab } = await labUp({ namespace: NS, config: configPath, out: sink });

  // 1. The right secret: kernel, initramfs, iscsistart login, ext4 mount, marker.
  const tap = await lab.addTap();
  const good = await runBoot({ namespace: NS, tap, mac: GOOD_MAC, timeoutMs: 120_000, marker: MARKER });
  const goodText = consoleText(good);
  const explain = async (run: BootRun) =>
    `outcome ${run.outcome} ${run.failure?.line ?? ''}\nconsole: ${consoleText(run).slice(-2500)}\nserver: ${(await readFile(lab.logPath('serve'), 'utf8').catch(() => '')).slice(-2000)}`;
  assert.equal(good.outcome, 'marker', await explain(good));
  assert.ok(goodText.includes(`${INIT_LINES.iscsistartStatus} 0`), await explain(good));
  assert.ok(goodText.includes(INIT_LINES.mounted), await explain(good));
  const sessions = (await serverLog(lab)).filter((l) => l.msg === 'iscsi session established' && l.target === TARGET);
  assert.equal(sessions.length, 1, JSON.stringify(sessions));
  assert.equal(sessions[0]!.initiator, INITIATOR);
  assert.equal(sessions[0]!.auth, 'CHAP');

  const script = good.events.find((e) => e.stage === BootStage.Script)?.atMs;
  const timeline: [string, number | undefined][] = [
    ['iPXE script', script],
    ['kernel loaded', timeOf(good.transcript, 'vmlinuz... ok')],
    ['initrd loaded', timeOf(good.transcript, 'initrd.gz... ok')],
    ['/init started', timeOf(good.transcript, INIT_LINES.started)],
    ['DHCP lease', timeOf(good.transcript, INIT_LINES.lease)],
    ['iscsistart done', timeOf(good.transcript, `${INIT_LINES.iscsistartStatus} 0`)],
    ['marker', good.markerMs],
  ];
  for (const [stage, at] of timeline) {
    assert.notEqual(at, undefined, `${stage} not seen on the console`);
    t.diagnostic(`${stage.padEnd(16)} ${((at ?? 0) / 1000).toFixed(3)} s`);
  }

  // 2. The wrong secret: iscsistart fails, the target refuses with 0x0201, no marker.
  const bad = await runBoot({ namespace: NS, tap, mac: BAD_MAC, timeoutMs: 120_000, marker: MARKER });
  const badText = consoleText(bad);
  assert.notEqual(bad.outcome, 'marker', await explain(bad));
  assert.ok(!badText.includes(MARKER), await explain(bad));
  const status = /diskless-init: iscsistart exited with status (\d+)/.exec(badText);
  assert.ok(status, await explain(bad));
  assert.notEqual(status[1], '0');
  assert.ok(badText.includes('diskless-init: iSCSI login failed'), await explain(bad));
  const refused = (await serverLog(lab)).filter((l) => l.msg === 'iscsi login refused');
  assert.ok(refused.some((l) => l.status === 0x0201), JSON.stringify(refused));
  t.diagnostic(`wrong secret: iscsistart status ${status[1]} at ${((timeOf(bad.transcript, 'iscsistart exited') ?? 0) / 1000).toFixed(3)} s, outcome ${bad.outcome}`);
});
