import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from './config/load-config.js';
import { isDisklessError } from './errors/index.js';
import { runServer } from './main.js';
import { Metrics } from './observe/metrics.js';
import { Inventory } from './control/inventory.js';
import { CLI } from '../test/support/run-cli.js';
import { createVbladeSegment } from '../test/support/vblade-segment.js';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

function configFor(dataDir: string, port: number, extra: Record<string, unknown> = {}) {
  return validateConfig({
    server: { address: '127.0.0.1', dataDir },
    dhcp: { mode: 'off' },
    ra: { enabled: false },
    tftp: { enabled: false },
    iscsi: { enabled: false },
    http: { address: '127.0.0.1', port },
    volumes: [{ name: 'vol1', size: '64MiB' }],
    nodes: [{ name: 'pc1', mac: '52:54:00:00:00:01', volume: 'vol1' }],
    defaults: { unknownNode: 'discovery' },
    ...extra,
  });
}

test('runServer: control + HTTP wired together, /metrics shows every layer, abort stops and frees the port', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'dh-main-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  mkdirSync(join(dataDir, 'http'));
  writeFileSync(join(dataDir, 'http', 'vmlinuz'), 'kernel');
  const port = await freePort();
  const controller = new AbortController();
  const running = await runServer(configFor(dataDir, port), { signal: controller.signal, metrics: new Metrics() });
  assert.deepEqual(running.services.map((s) => s.name), ['control', 'http']);
  const base = `http://127.0.0.1:${port}`;
  assert.match(await (await fetch(`${base}/boot/52-54-00-00-00-01.ipxe`)).text(), /^sanboot iscsi:127\.0\.0\.1:::0:iqn\.2026-11\.io\.diskless:vol1 \|\| goto failed$/m);
  assert.match(await (await fetch(`${base}/boot/52:54:00:00:00:99.ipxe`)).text(), /goto retry/);
  assert.equal(await (await fetch(`${base}/files/vmlinuz`)).text(), 'kernel');
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /^diskless_control_scripts_total\{kind="sanboot"\} 1$/m);
  assert.match(metrics, /^diskless_control_scripts_total\{kind="discovery"\} 1$/m);
  assert.match(metrics, /^diskless_http_requests_total\{route="script",status="200"\} 2$/m);
  controller.abort();
  await running.stopped;
  assert.equal(JSON.parse(readFileSync(join(dataDir, 'discovered.json'), 'utf8')).machines[0].mac, '52:54:00:00:00:99');
  await assert.rejects(fetch(`${base}/healthz`));
});

test('runServer: a service that cannot start stops the ones already started and rethrows', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'dh-main-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.after(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  await assert.rejects(runServer(configFor(dataDir, port), { signal: new AbortController().signal }), (e: unknown) => isDisklessError(e, 'HTTP_LISTEN_FAILED'));
  assert.equal(existsSync(join(dataDir, 'discovered.json')), false);
});

test('runServer: services disabled in config are not built; an already aborted signal stops at once', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'dh-main-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const controller = new AbortController();
  const running = await runServer(configFor(dataDir, 1, { http: { enabled: false } }), { signal: controller.signal });
  assert.deepEqual(running.services.map((s) => s.name), ['control']);
  controller.abort();
  await running.stopped;
  const aborted = new AbortController();
  aborted.abort();
  const none = await runServer(configFor(dataDir, await freePort()), { signal: aborted.signal });
  assert.deepEqual(none.services, []);
  await none.stopped;
});

test('runServer: an AoE export whose mask list follows the nodes is re-seeded live when the node list changes', { timeout: 120_000 }, async (t) => {
  const seg = await createVbladeSegment({ sizeBytes: 4096, seed: 1 });
  const dataDir = mkdtempSync(join(tmpdir(), 'dh-main-aoe-'));
  t.after(async () => {
    await seg.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const config = configFor(dataDir, await freePort(), { aoe: { enabled: true, interfaces: [seg.nearIf], exports: [{ volume: 'vol1', shelf: 5, slot: 1 }] } });
  const controller = new AbortController();
  const running = await runServer(config, { signal: controller.signal, metrics: new Metrics() });
  t.after(async () => {
    controller.abort();
    await running.stopped;
  });
  const discover = async () => JSON.parse(await seg.exec(process.execPath, [CLI, 'aoe', 'discover', '--iface', seg.farIf, '--wait-ms', '300', '--json'])) as Array<{ shelf: number; slot: number }>;
  assert.deepEqual(await discover(), [], 'the far end is not a node of vol1: the target is silent to it');
  // A node with the far end's MAC now boots vol1 (a reload, an adoption): no restart needed.
  running.control.setInventory(Inventory.fromConfig({ ...config, nodes: [...config.nodes, { ...config.nodes[0]!, name: 'pc2', mac: seg.farMac }] }));
  let found: Array<{ shelf: number; slot: number }> = [];
  for (let i = 0; i < 10 && found.length === 0; i++) found = await discover();
  assert.deepEqual(found.map((f) => `e${f.shelf}.${f.slot}`), ['e5.1']);
  assert.deepEqual(JSON.parse(readFileSync(join(dataDir, 'aoe', 'e5.1.json'), 'utf8')).mask, ['52:54:00:00:00:01', seg.farMac]);
  // And off again when it is removed.
  running.control.setInventory(Inventory.fromConfig(config));
  for (let i = 0; i < 10 && found.length !== 0; i++) found = await discover();
  assert.deepEqual(found, []);
});
