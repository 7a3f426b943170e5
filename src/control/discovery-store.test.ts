import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDisklessError } from '../errors/index.js';
import { silentLogger } from '../observe/logger.js';
import { Metrics } from '../observe/metrics.js';
import { DiscoveryStore, parseDiscoveryFile } from './discovery-store.js';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'dh-discovery-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const at = (s: number) => new Date(Date.UTC(2026, 10, 20, 10, 0, s));

test('sightings persist and a new store reads them back', async (t) => {
  const file = join(tempDir(t), 'sub', 'discovered.json');
  const a = new DiscoveryStore({ file, log: silentLogger(), metrics: new Metrics() });
  await a.load();
  await a.record({ mac: '52:54:00:00:00:0a', at: at(1), arch: 0, ip: '10.77.0.100' });
  await a.record({ mac: '52:54:00:00:00:0b', at: at(2) });
  await a.record({ mac: '52:54:00:00:00:0a', at: at(3), ip: '10.77.0.101' });
  const b = new DiscoveryStore({ file, log: silentLogger(), metrics: new Metrics() });
  await b.load();
  assert.deepEqual(b.list(), [
    { mac: '52:54:00:00:00:0a', firstSeen: at(1).toISOString(), lastSeen: at(3).toISOString(), arch: 0, ip: '10.77.0.101', requests: 2 },
    { mac: '52:54:00:00:00:0b', firstSeen: at(2).toISOString(), lastSeen: at(2).toISOString(), requests: 1 },
  ]);
  assert.equal(await b.forget('52:54:00:00:00:0b'), true);
  assert.equal(await b.forget('52:54:00:00:00:0b'), false);
  assert.deepEqual(parseDiscoveryFile(readFileSync(file, 'utf8')).map((m) => m.mac), ['52:54:00:00:00:0a']);
});

test('concurrent sightings are coalesced into few atomic writes, all of them on disk, no temp file left', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'discovered.json');
  const store = new DiscoveryStore({ file, log: silentLogger(), metrics: new Metrics() });
  await store.load();
  const macs = Array.from({ length: 200 }, (_, i) => `52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`);
  await Promise.all(macs.map((mac, i) => store.record({ mac, at: at(i % 60) })));
  await store.flush();
  assert.equal(parseDiscoveryFile(readFileSync(file, 'utf8')).length, 200);
  assert.deepEqual(readdirSync(dir), ['discovered.json']);
});

test('the list is bounded: the least recently seen machine is dropped', async (t) => {
  const file = join(tempDir(t), 'discovered.json');
  const metrics = new Metrics();
  const store = new DiscoveryStore({ file, log: silentLogger(), metrics, maxMachines: 2 });
  await store.record({ mac: '52:54:00:00:00:01', at: at(1) });
  await store.record({ mac: '52:54:00:00:00:02', at: at(2) });
  await store.record({ mac: '52:54:00:00:00:01', at: at(3) });
  await store.record({ mac: '52:54:00:00:00:03', at: at(4) });
  assert.deepEqual(store.list().map((m) => m.mac), ['52:54:00:00:00:01', '52:54:00:00:00:03']);
  assert.equal(metrics.value('diskless_control_discovery_evicted_total'), 1);
});

test('a damaged file is moved aside and the list starts empty; a missing file is an empty list', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'discovered.json');
  const fresh = new DiscoveryStore({ file, log: silentLogger(), metrics: new Metrics() });
  await fresh.load();
  assert.deepEqual(fresh.list(), []);
  for (const damaged of ['{not json', '{"version": 2, "machines": []}', '{"version": 1, "machines": [{"mac": "XX"}]}', '[]']) {
    writeFileSync(file, damaged);
    const store = new DiscoveryStore({ file, log: silentLogger(), metrics: new Metrics() });
    await store.load();
    assert.deepEqual(store.list(), []);
    assert.equal(existsSync(file), false);
    assert.ok(readdirSync(dir).some((f) => f.startsWith('discovered.json.damaged-')));
    for (const f of readdirSync(dir)) rmSync(join(dir, f));
  }
  assert.throws(() => parseDiscoveryFile('{"version":1,"machines":[{"mac":"52:54:00:00:00:01","firstSeen":"x","lastSeen":"y","requests":1.5}]}'), (e: unknown) => isDisklessError(e, 'DISCOVERY_STORE_FAILED'));
});

test('a write that cannot happen rejects DISCOVERY_STORE_FAILED and leaves no temp file', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'blocker'), '');
  const store = new DiscoveryStore({ file: join(dir, 'blocker', 'discovered.json'), log: silentLogger(), metrics: new Metrics() });
  await assert.rejects(store.record({ mac: '52:54:00:00:00:01', at: at(1) }), (e: unknown) => isDisklessError(e, 'DISCOVERY_STORE_FAILED'));
  assert.deepEqual(readdirSync(dir), ['blocker']);
});
