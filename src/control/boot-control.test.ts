import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../config/load-config.js';
import type { Config } from '../config/schema.js';
import { isDisklessError } from '../errors/index.js';
import { silentLogger } from '../observe/logger.js';
import { Metrics } from '../observe/metrics.js';
import type { BootClient } from '../services/dhcp/boot-policy.js';
import { BootControl } from './boot-control.js';
import { ClientArch, firmwareBootFile } from './boot-file.js';
import { Inventory } from './inventory.js';

const YAML = `
server: { address: 10.77.0.1, dataDir: DATA }
http: { port: 8080 }
iscsi: { iqnPrefix: iqn.2026-11.io.diskless }
volumes: [{ name: vol1, size: 64MiB }, { name: vol2, size: 64MiB }]
nodes:
  - { name: pc1, mac: 52:54:00:00:00:01, ip: 10.77.0.11, volume: vol1 }
  - { name: pc2, mac: 52:54:00:00:00:02, hostname: second, volume: vol2, chap: { username: pc2, secret: twelve-chars-secret } }
  - { name: pc3, mac: 52:54:00:00:00:03, boot: exit }
  - { name: pc4, mac: 52:54:00:00:00:04, boot: script, script: "kernel http://10.77.0.1:8080/files/vmlinuz\\nboot" }
`;

function setup(extra = '', t?: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'dh-control-'));
  t?.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = parseConfig(YAML.replace('DATA', dir) + extra);
  const metrics = new Metrics();
  let clock = Date.parse('2026-11-20T10:00:00Z');
  const control = new BootControl({ config, log: silentLogger(), metrics, now: () => new Date((clock += 1000)), discoveryRetrySeconds: 7 });
  return { dir, config, metrics, control };
}

function client(mac: string, arch: number | undefined, isIpxe = false): BootClient {
  return { mac, arch, isIpxe, vendorClass: undefined, userClass: isIpxe ? 'iPXE' : undefined, ifname: 'br0' };
}

test('firmware boot file per option 93 arch (RFC 4578 §2.1)', () => {
  const { config } = setup();
  const files = config.bootFiles;
  const http = 'http://10.77.0.1:8080';
  assert.equal(firmwareBootFile(ClientArch.biosX86, files, http), 'undionly.kpxe');
  assert.equal(firmwareBootFile(undefined, files, http), 'undionly.kpxe');
  assert.equal(firmwareBootFile(ClientArch.efiBc, files, http), 'ipxe.efi');
  assert.equal(firmwareBootFile(ClientArch.efiX64, files, http), 'ipxe.efi');
  assert.equal(firmwareBootFile(ClientArch.efiX64, { ...files, uefiPreferSnp: true }, http), 'snponly.efi');
  assert.equal(firmwareBootFile(ClientArch.efiIa32, files, http), null);
  assert.equal(firmwareBootFile(ClientArch.efiArm64, files, http), null);
  assert.equal(firmwareBootFile(ClientArch.efiArm64, { ...files, arm64: 'arm64/ipxe.efi' }, http), 'arm64/ipxe.efi');
  assert.equal(firmwareBootFile(ClientArch.efiX64Http, files, http), 'http://10.77.0.1:8080/bootfiles/ipxe.efi');
  assert.equal(firmwareBootFile(ClientArch.efiX64Http, { ...files, uefiPreferSnp: true }, http), 'http://10.77.0.1:8080/bootfiles/snponly.efi');
  assert.equal(firmwareBootFile(ClientArch.efiArm64Http, files, http), null);
  assert.equal(firmwareBootFile(ClientArch.efiArm64Http, { ...files, arm64: 'arm64/ipxe.efi' }, http), 'http://10.77.0.1:8080/bootfiles/arm64/ipxe.efi');
  for (const other of [1, 2, 5, 8, 10, 12, 15, 17, 20, 255, 65535]) assert.equal(firmwareBootFile(other, files, http), null, `arch ${other}`);
});

test('known node: firmware gets the file for its arch, iPXE gets its script URL; reservation and hostname', async (t) => {
  const { control, metrics } = setup('', t);
  assert.deepEqual(await control.resolve(client('52:54:00:00:00:01', 0)), { bootFile: 'undionly.kpxe', nextServer: '10.77.0.1', address: '10.77.0.11', hostname: 'pc1' });
  assert.deepEqual(await control.resolve(client('52:54:00:00:00:01', 7)), { bootFile: 'ipxe.efi', nextServer: '10.77.0.1', address: '10.77.0.11', hostname: 'pc1' });
  assert.deepEqual(await control.resolve(client('52:54:00:00:00:01', 0, true)), {
    bootFile: 'http://10.77.0.1:8080/boot/52-54-00-00-00-01.ipxe',
    nextServer: '10.77.0.1',
    address: '10.77.0.11',
    hostname: 'pc1',
  });
  // No reservation: address left to the pool; hostname from the node's hostname key.
  assert.deepEqual(await control.resolve(client('52:54:00:00:00:02', 9)), { bootFile: 'ipxe.efi', nextServer: '10.77.0.1', hostname: 'second' });
  assert.equal(await control.resolve(client('52:54:00:00:00:01', 6)), null);
  assert.equal(metrics.value('diskless_control_decisions_total', { result: 'unsupported_arch' }), 1);
  assert.equal(metrics.value('diskless_control_decisions_total', { result: 'firmware' }), 3);
  assert.equal(metrics.value('diskless_control_decisions_total', { result: 'ipxe' }), 1);
});

test('unknown MACs: ignore stays silent; exit, menu and discovery still boot iPXE', async (t) => {
  const unknown = '52:54:00:99:99:99';
  const ignore = setup('defaults: { unknownNode: ignore }', t).control;
  assert.equal(await ignore.resolve(client(unknown, 0)), null);
  assert.equal(await ignore.resolve(client(unknown, 0, true)), null);
  await assert.rejects(ignore.scriptFor(unknown, '10.77.0.100'), (e: unknown) => isDisklessError(e, 'CONTROL_UNKNOWN_NODE'));
  for (const policy of ['exit', 'menu', 'discovery']) {
    const { control } = setup(`defaults: { unknownNode: ${policy} }`, t);
    assert.deepEqual(await control.resolve(client(unknown, 0)), { bootFile: 'undionly.kpxe', nextServer: '10.77.0.1' }, policy);
    assert.deepEqual(await control.resolve(client(unknown, 0, true)), { bootFile: 'http://10.77.0.1:8080/boot/52-54-00-99-99-99.ipxe', nextServer: '10.77.0.1' }, policy);
  }
  const exit = setup('defaults: { unknownNode: exit }', t).control;
  assert.match(await exit.scriptFor(unknown, '10.77.0.100'), /is not in the inventory; booting the next device\nexit\n$/);
  const menu = setup('defaults: { unknownNode: menu }', t).control;
  assert.match(await menu.scriptFor(unknown, '10.77.0.100'), /^choose --default local --timeout 30000 target/m);
});

test('scripts per node kind: sanboot with the volume target and CHAP, exit, the operator script', async (t) => {
  const { control } = setup('', t);
  const s1 = await control.scriptFor('52:54:00:00:00:01', '10.77.0.11');
  assert.match(s1, /^set initiator-iqn iqn\.2026-11\.io\.diskless\.initiator:pc1$/m);
  assert.match(s1, /^sanboot iscsi:10\.77\.0\.1:::0:iqn\.2026-11\.io\.diskless:vol1 \|\| goto failed$/m);
  assert.doesNotMatch(s1, /username|password/);
  const s2 = await control.scriptFor('52:54:00:00:00:02', '10.77.0.12');
  assert.match(s2, /^set username pc2$/m);
  assert.match(s2, /^set password twelve-chars-secret$/m);
  assert.match(s2, /:vol2 \|\| goto failed$/m);
  assert.match(await control.scriptFor('52:54:00:00:00:03', 'x'), /node pc3 is set to boot: exit/);
  assert.equal(await control.scriptFor('52:54:00:00:00:04', 'x'), '#!ipxe\nkernel http://10.77.0.1:8080/files/vmlinuz\nboot\n');
});

test('a specific iSCSI or HTTP listen address is used in the URLs instead of server.address', async (t) => {
  const { config } = setup('', t);
  const control = new BootControl({
    config: { ...config, http: { ...config.http, address: '10.77.0.2', port: 80 }, iscsi: { ...config.iscsi, address: '10.77.0.3', port: 3261 } },
    log: silentLogger(),
    metrics: new Metrics(),
  });
  assert.equal(control.scriptUrl('52:54:00:00:00:01'), 'http://10.77.0.2:80/boot/52-54-00-00-00-01.ipxe');
  assert.match(await control.scriptFor('52:54:00:00:00:01', 'x'), /sanboot iscsi:10\.77\.0\.3::3261:0:/);
});

test('discovery: records MAC, first/last seen, arch from DHCP and IP; adoption boots it on the next retry', async (t) => {
  const { control, dir, metrics } = setup('defaults: { unknownNode: discovery }', t);
  await control.start();
  const mac = '52:54:00:aa:bb:cc';
  await control.resolve(client(mac, 7));
  const first = await control.scriptFor(mac, '10.77.0.150');
  assert.match(first, /^sleep 7$/m);
  assert.match(first, /^chain --replace --autofree http:\/\/10\.77\.0\.1:8080\/boot\/52-54-00-aa-bb-cc\.ipxe \|\| goto retry$/m);
  await control.scriptFor(mac, '10.77.0.151');
  const onDisk = JSON.parse(readFileSync(join(dir, 'discovered.json'), 'utf8'));
  assert.deepEqual(onDisk, {
    version: 1,
    machines: [{ mac, firstSeen: '2026-11-20T10:00:01.000Z', lastSeen: '2026-11-20T10:00:02.000Z', arch: 7, ip: '10.77.0.151', requests: 2 }],
  });
  assert.equal(metrics.value('diskless_control_scripts_total', { kind: 'discovery' }), 2);

  // The operator adopts it (config reload): the very next retry gets a real boot script.
  const adopted = parseConfig(YAML.replace('DATA', dir) + `  - { name: new1, mac: 52-54-00-AA-BB-CC, boot: exit }\ndefaults: { unknownNode: discovery }\n`);
  control.setInventory(Inventory.fromConfig(adopted));
  assert.match(await control.scriptFor(mac, '10.77.0.151'), /node new1 is set to boot: exit/);
  await control.stop();
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'discovered.json'), 'utf8')).machines, []);
});

test('a discovery write failure still serves the waiting script and is counted', async (t) => {
  const { control, metrics, config } = setup('defaults: { unknownNode: discovery }', t);
  rmSync(config.server.dataDir, { recursive: true });
  // dataDir is now a regular file: mkdir and the write fail.
  const { writeFileSync } = await import('node:fs');
  writeFileSync(config.server.dataDir, 'not a directory');
  const s = await control.scriptFor('52:54:00:aa:bb:cd', '10.77.0.150');
  assert.match(s, /goto retry/);
  assert.equal(metrics.value('diskless_control_discovery_write_failures_total'), 1);
});

test('start() refuses a node whose script cannot be rendered, naming the node', async (t) => {
  const bad = setup('', t);
  const config: Config = { ...bad.config, iscsi: { ...bad.config.iscsi, iqnPrefix: 'not an iqn' } };
  const control = new BootControl({ config, log: silentLogger(), metrics: new Metrics() });
  await assert.rejects(control.start(), (e: unknown) => isDisklessError(e, 'CONFIG_INVALID') && e.data.key === 'nodes[0]' && e.data.field === 'target.iqn');
  assert.throws(() => bad.control.setInventory(new Inventory([{ name: 'x y', mac: '52:54:00:00:00:09', boot: 'exit' }], [], 'exit')), (e: unknown) => isDisklessError(e, 'CONFIG_INVALID'));
});
