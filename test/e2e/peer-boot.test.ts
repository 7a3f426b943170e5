import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab } from '../../src/lab/lab.js';
import { PeerBootStack } from '../../src/lab/peers/peer-boot-stack.js';
import { runBoot } from '../../src/lab/run-boot.js';
import { BootStage } from '../../src/lab/boot-timeline.js';

// Proves the lab machinery end to end: a QEMU VM (SeaBIOS + iPXE ROM) boots the demo disk over
// iSCSI from the peer stack (tuned dnsmasq + tgt) to the DISKLESS-OK marker, twice: as a new
// node (empty lease file) and again with its lease. ~3.5 s per boot under TCG.
const NS = 'dl-e2e-peer';
const TGT_CONTROL_PORT = 16;
const MAC = '52:54:00:d1:00:01';

test('peer stack (tuned dnsmasq + tgt) boots the demo disk to DISKLESS-OK', { timeout: 60_000 }, async (t) => {
  const workDir = await mkdtemp(join(tmpdir(), 'dl-e2e-peer-'));
  const lab = new Lab({ namespace: NS, tapPrefix: 'dlt', stateDir: join(workDir, 'state') });
  await lab.down();
  const stack = new PeerBootStack({ lab, workDir, tuned: true, tgtControlPort: TGT_CONTROL_PORT });
  t.after(async () => {
    await stack.stop().catch(() => undefined);
    await lab.down();
    await rm(workDir, { recursive: true, force: true });
  });
  await lab.up();
  await stack.start();
  const tap = await lab.addTap();

  for (const run of ['new node', 'later boot']) {
    const events: string[] = [];
    const result = await runBoot({ namespace: NS, tap, mac: MAC, timeoutMs: 20_000, onEvent: (e) => events.push(e.stage) });
    assert.equal(result.outcome, 'marker', `${run}: ${result.failure?.line ?? ''}\n${result.transcript.map((c) => c.text).join('').slice(-800)}`);
    assert.deepEqual(events, [BootStage.PowerOn, BootStage.Firmware, BootStage.Ipxe, BootStage.Nic, BootStage.Dhcp, BootStage.Script, BootStage.San, BootStage.Marker], run);
    // Tuned peer: no ~15 s IPv6 wait, so the whole boot takes a few seconds.
    assert.ok(result.markerMs! < 12_000, `${run}: marker at ${result.markerMs} ms`);
    const script = result.events.find((e) => e.stage === BootStage.Script);
    assert.equal(script?.detail.url, 'tftp://10.77.0.1/boot.ipxe');
    // The VM is gone once runBoot returns.
    assert.notEqual(result.exit, undefined, `${run}: QEMU still running`);
  }
  // dnsmasq leased an address from its range to our MAC.
  const leases = await readFile(stack.dnsmasq.leaseFile, 'utf8');
  assert.match(leases, new RegExp(`${MAC} 10\\.77\\.0\\.1\\d\\d `));
  assert.match(stack.dnsmasq.output, /RTR-ADVERT/);
});

test('peer stack: a VM whose script names a missing target fails fast with the iPXE error, not a timeout', { timeout: 60_000 }, async (t) => {
  const workDir = await mkdtemp(join(tmpdir(), 'dl-e2e-peer-'));
  const lab = new Lab({ namespace: `${NS}2`.slice(0, 15), tapPrefix: 'dlt', stateDir: join(workDir, 'state') });
  await lab.down();
  const stack = new PeerBootStack({ lab, workDir, tuned: true, tgtControlPort: TGT_CONTROL_PORT, iqn: 'iqn.2026-11.io.diskless.lab:other' });
  t.after(async () => {
    await stack.stop().catch(() => undefined);
    await lab.down();
    await rm(workDir, { recursive: true, force: true });
  });
  await lab.up();
  await stack.start();
  // Serve a script that names a target tgt does not have.
  await writeFile(join(stack.tftpRoot, 'boot.ipxe'), '#!ipxe\nsanboot iscsi:10.77.0.1:::1:iqn.2026-11.io.diskless.lab:nosuch\n');
  const tap = await lab.addTap();
  const result = await runBoot({ namespace: lab.namespace, tap, mac: MAC, timeoutMs: 20_000 });
  assert.equal(result.outcome, 'failed');
  // tgt answers a login to an unknown target in ways iPXE reports as 2c0d603b (No such device)
  // or 0f0d6039 (Connection reset); either way the console names the SAN device.
  assert.match(result.failure!.line, /^Could not open SAN device: /);
  assert.match(result.failure!.detail.error ?? '', /^[0-9a-f]{8}$/);
  assert.ok(result.endedMs < 10_000, `failure seen at ${result.endedMs} ms`);
  assert.equal(result.markerMs, undefined);
});
