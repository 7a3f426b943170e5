/**
 * The reason the RA server exists, measured on real firmware: iPXE (Debian's ipxe-qemu ROM in a
 * QEMU TCG VM) configures IPv4 and IPv6 together, and on a segment without a router it keeps
 * soliciting for many seconds before printing "Configuring (net0 ...) ok" (LAB.md §2). With
 * our RaServer answering, that wait must vanish.
 *
 * Topology: namespace dn-rae-<pid> holds a bridge with the VM's tap and one end of a veth pair,
 * and dnsmasq (DHCP only, --port=0, no enable-ra) giving the VM an address and a boot file that
 * does not exist. The other veth end stays here, where the RaServer under test runs in this
 * process. Each boot is cut once iPXE prints "ok". Needs root, qemu-system-x86, ipxe-qemu, dnsmasq.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createNamespace, deleteNamespace, execIn, ip, ipIn, spawnIn } from '../../src/lab/netns.js';
import { Metrics } from '../../src/observe/metrics.js';
import { silentLogger } from '../../src/observe/logger.js';
import { RaServer } from '../../src/services/ra/ra-server.js';

const tag = String(process.pid % 10000);
const ns = `dn-rae-${tag}`;
const bridge = `dn-rb${tag}`;
const tap = `dn-rt${tag}`;
const vethNs = `dn-rv${tag}`;
const vethHere = `dn-ru${tag}`;
const BOOT_TIMEOUT_MS = 60_000;

/** Seconds from iPXE's "Configuring (net0 ...)" to its "ok", read from the serial console. */
interface Measure {
  readonly configureSeconds: number;
  readonly console: string;
}

function bootUntilConfigured(mac: string): Promise<Measure> {
  return new Promise((resolve, reject) => {
    const qemu: ChildProcess = spawnIn(ns, 'qemu-system-x86_64', [
      '-accel', 'tcg', '-m', '256', '-nographic', '-no-reboot', '-boot', 'n',
      '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`,
      '-device', `e1000,netdev=n0,mac=${mac}`,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    let configuringAt: number | undefined;
    let done = false;
    const finish = (err: Error | undefined, m?: Measure) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      qemu.kill('SIGKILL');
      qemu.once('exit', () => (err ? reject(err) : resolve(m!)));
      if (qemu.exitCode !== null || qemu.signalCode !== null) err ? reject(err) : resolve(m!);
    };
    const timer = setTimeout(() => finish(new Error(`iPXE did not finish configuring in ${BOOT_TIMEOUT_MS} ms; console:\n${text.slice(-2000)}`)), BOOT_TIMEOUT_MS);
    qemu.stdout!.on('data', (chunk: Buffer) => {
      const now = performance.now();
      text += chunk.toString('latin1');
      const at = text.indexOf('Configuring (net0');
      if (at >= 0 && configuringAt === undefined) configuringAt = now;
      if (configuringAt !== undefined && /Configuring \(net0[^)]*\)[. ]*ok/.test(text.slice(at))) {
        finish(undefined, { configureSeconds: (now - configuringAt) / 1000, console: text });
      }
    });
    qemu.stderr!.on('data', (d: Buffer) => (text += d.toString()));
    qemu.once('error', (err) => finish(err));
    qemu.once('exit', (code) => finish(new Error(`qemu exited (${code}) before iPXE configured; console:\n${text.slice(-2000)}`)));
  });
}

let dnsmasq: ChildProcess | undefined;
let workDir: string;

before(async () => {
  await deleteNamespace(ns);
  await ip('link', 'del', vethHere).catch(() => undefined);
  workDir = mkdtempSync(join(tmpdir(), 'dn-rae-'));
  await createNamespace(ns);
  await ipIn(ns, 'link', 'add', bridge, 'type', 'bridge');
  // flood multicast (ff02::2) to every port: no MLD querier runs here
  await execIn(ns, 'sh', ['-c', `echo 0 > /sys/class/net/${bridge}/bridge/multicast_snooping`]);
  await ipIn(ns, 'tuntap', 'add', 'dev', tap, 'mode', 'tap');
  await ip('link', 'add', vethHere, 'type', 'veth', 'peer', 'name', vethNs);
  await ip('link', 'set', vethNs, 'netns', ns);
  writeFileSync(`/proc/sys/net/ipv6/conf/${vethHere}/disable_ipv6`, '1');
  await ip('link', 'set', vethHere, 'up');
  for (const port of [tap, vethNs]) {
    await ipIn(ns, 'link', 'set', port, 'master', bridge);
    await ipIn(ns, 'link', 'set', port, 'up');
  }
  await ipIn(ns, 'addr', 'add', '10.79.0.1/24', 'dev', bridge);
  await ipIn(ns, 'link', 'set', bridge, 'up');
  dnsmasq = spawnIn(ns, 'dnsmasq', [
    '--no-daemon', '--conf-file=/dev/null', '--port=0', `--interface=${bridge}`, '--bind-interfaces',
    '--dhcp-range=10.79.0.100,10.79.0.199,1h', '--dhcp-authoritative', '--no-ping',
    `--dhcp-leasefile=${join(workDir, 'leases')}`, `--pid-file=${join(workDir, 'dnsmasq.pid')}`,
    '--dhcp-boot=dn-does-not-exist.ipxe',
  ], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(dnsmasq.exitCode, null, 'dnsmasq started');
});

after(async () => {
  if (dnsmasq && dnsmasq.exitCode === null) {
    const exited = new Promise((r) => dnsmasq!.once('exit', r));
    dnsmasq.kill('SIGTERM');
    await exited;
  }
  await deleteNamespace(ns);
  await ip('link', 'del', vethHere).catch(() => undefined);
  rmSync(workDir, { recursive: true, force: true });
});

test('iPXE stops waiting for an IPv6 router once RaServer answers its solicitation', { timeout: 3 * BOOT_TIMEOUT_MS }, async (t) => {
  const without = await bootUntilConfigured('52:54:00:d0:00:01');

  const metrics = new Metrics();
  const ra = new RaServer({ interfaces: [vethHere], intervalSeconds: 200, log: silentLogger(), metrics });
  await ra.start();
  let withRa: Measure;
  try {
    withRa = await bootUntilConfigured('52:54:00:d0:00:02');
  } finally {
    await ra.stop();
  }
  t.diagnostic(`iPXE "Configuring ... ok": ${without.configureSeconds.toFixed(2)} s without RA, ${withRa.configureSeconds.toFixed(2)} s with RaServer`);

  assert.ok(metrics.value('diskless_ra_solicitations_total', { interface: vethHere }) >= 1, 'iPXE solicited and we saw it');
  assert.ok(metrics.value('diskless_ra_advertisements_total', { interface: vethHere, kind: 'solicited' }) >= 1, 'we answered');
  assert.ok(without.configureSeconds > 6, `without RA iPXE waits for a router (${without.configureSeconds.toFixed(2)} s)`);
  assert.ok(withRa.configureSeconds < without.configureSeconds - 4, `the IPv6 wait vanished (${withRa.configureSeconds.toFixed(2)} s vs ${without.configureSeconds.toFixed(2)} s)`);
});
