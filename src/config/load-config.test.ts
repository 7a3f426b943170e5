import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from './load-config.js';
import { isDisklessError } from '../errors/index.js';

function invalidKey(yaml: string): unknown {
  try {
    parseConfig(yaml);
  } catch (err) {
    assert.ok(isDisklessError(err), `expected DisklessError, got ${String(err)}`);
    return { code: err.code, key: err.data.key };
  }
  assert.fail('expected the configuration to be refused');
}

test('an empty file is a complete configuration with defaults', () => {
  const c = parseConfig('');
  assert.equal(c.dhcp.mode, 'authoritative');
  assert.equal(c.tftp.port, 69);
  assert.deepEqual(c.nodes, []);
});

test('a bad enum names the key and lists the allowed values', () => {
  try {
    parseConfig('dhcp:\n  mode: proxi\n');
    assert.fail('accepted');
  } catch (err) {
    assert.ok(isDisklessError(err, 'CONFIG_INVALID'));
    assert.equal(err.data.key, 'dhcp.mode');
    assert.equal(err.data.value, 'proxi');
    assert.match(String(err.data.allowed), /authoritative, proxy, off/);
  }
});

test('unknown keys, bad addresses, out-of-range numbers and dangling references are refused', () => {
  assert.deepEqual(invalidKey('dhcp:\n  moed: proxy\n'), { code: 'CONFIG_INVALID', key: 'dhcp.moed' });
  assert.deepEqual(invalidKey('server:\n  address: 10.0.0.300\n'), { code: 'CONFIG_INVALID', key: 'server.address' });
  assert.deepEqual(invalidKey('tftp:\n  port: 70000\n'), { code: 'CONFIG_INVALID', key: 'tftp.port' });
  assert.deepEqual(invalidKey('nodes:\n  - name: a\n    mac: 52:54:00:00:00:01\n    volume: nope\n'), { code: 'CONFIG_INVALID', key: 'nodes[0].volume' });
  assert.deepEqual(invalidKey('dhcp:\n  pool: { start: 10.78.0.1, end: 10.77.0.9 }\n'), { code: 'CONFIG_INVALID', key: 'dhcp.pool.start' });
  assert.deepEqual(
    invalidKey('volumes: [{name: v, size: 1M}]\nnodes:\n  - {name: a, mac: 52:54:00:00:00:01, volume: v}\n  - {name: b, mac: 52-54-00-00-00-01, volume: v}\n'),
    { code: 'CONFIG_INVALID', key: 'nodes[1].mac' },
  );
});

test('syntax errors are CONFIG_SYNTAX', () => {
  assert.throws(() => parseConfig('dhcp: [unclosed\n'), (e: unknown) => isDisklessError(e, 'CONFIG_SYNTAX'));
});

test('MACs are normalised to lower-case colon form', () => {
  const c = parseConfig('volumes: [{name: v, size: 64MiB}]\nnodes: [{name: a, mac: 52-54-00-AB-CD-EF, volume: v}]\n');
  assert.equal(c.nodes[0]!.mac, '52:54:00:ab:cd:ef');
});

/** The refusal's key, value and allowed text. */
function refusal(yaml: string): { key: unknown; value: unknown; allowed: string } {
  try {
    parseConfig(yaml);
  } catch (err) {
    assert.ok(isDisklessError(err, 'CONFIG_INVALID'), String(err));
    return { key: err.data.key, value: err.data.value, allowed: String(err.data.allowed) };
  }
  assert.fail('expected the configuration to be refused');
}

test('storage: defaults, and keys that belong to another driver are refused naming key, value and what is allowed', () => {
  const c = parseConfig('');
  assert.equal(c.storage.driver, 'embedded');
  assert.equal(c.storage.pool, undefined);
  const e = parseConfig('storage: {driver: embedded, pool: /srv/pool, mirror: /mnt/b/pool, capacity: 10G}\n');
  assert.deepEqual(e.storage, { driver: 'embedded', pool: '/srv/pool', mirror: '/mnt/b/pool', capacity: '10G' });
  assert.equal(parseConfig('storage: {driver: zfs, zfsDataset: tank/diskless}\n').storage.zfsDataset, 'tank/diskless');

  assert.match(refusal('storage: {driver: btrfs}\n').allowed, /embedded, file, zfs/);
  assert.deepEqual(refusal('storage: {driver: zfs}\n'), { key: 'storage.zfsDataset', value: undefined, allowed: 'a dataset such as tank/diskless (required when storage.driver is zfs)' });
  assert.equal(refusal('storage: {driver: embedded, zfsDataset: tank/x}\n').key, 'storage.zfsDataset');
  const pool = refusal('storage: {driver: zfs, zfsDataset: tank/x, pool: /p}\n');
  assert.deepEqual([pool.key, pool.value], ['storage.pool', '/p']);
  assert.match(pool.allowed, /driver embedded/);
  assert.equal(refusal('storage: {driver: file, mirror: /m}\n').key, 'storage.mirror');
  assert.equal(refusal('storage: {driver: embedded, capacity: lots}\n').key, 'storage.capacity');
  assert.equal(refusal('storage: {driver: embedded, capacity: "0"}\n').key, 'storage.capacity');
  assert.equal(refusal('storage: {driver: zfs, zfsDataset: /tank}\n').key, 'storage.zfsDataset');
  assert.equal(refusal('server: {dataDir: /d}\nstorage: {driver: embedded, mirror: /d/pool/}\n').key, 'storage.mirror');
  assert.match(refusal('storage: {drive: zfs}\n').allowed, /known keys here: driver, pool, mirror, capacity, zfsDataset/);
});

test('volumes[].clone: VOLUME@SNAPSHOT of a volume declared above, alone, not with the file driver', () => {
  const ok = parseConfig('storage: {driver: embedded}\nvolumes:\n  - {name: golden, source: demo, readOnly: true}\n  - {name: pc1, clone: golden@golden}\n');
  assert.equal(ok.volumes[1]!.clone, 'golden@golden');
  const head = 'storage: {driver: embedded}\nvolumes:\n  - {name: golden, source: demo}\n';
  assert.equal(refusal(`${head}  - {name: pc1, clone: golden}\n`).key, 'volumes[1].clone');
  assert.equal(refusal(`${head}  - {name: pc1, clone: golden@a@b}\n`).key, 'volumes[1].clone');
  const missing = refusal(`${head}  - {name: pc1, clone: other@s}\n`);
  assert.deepEqual([missing.key, missing.value], ['volumes[1].clone', 'other@s']);
  assert.match(missing.allowed, /declared above this one: golden/);
  assert.match(refusal(`${head}  - {name: pc1, clone: golden@s, size: 1G}\n`).allowed, /without size/);
  assert.match(refusal(`${head}  - {name: pc1, clone: golden@s, source: /x.img}\n`).allowed, /without source/);
  assert.equal(refusal('storage: {driver: embedded}\nvolumes:\n  - {name: pc1, clone: pc1@s}\n').key, 'volumes[0].clone');
  assert.match(refusal('storage: {driver: file}\nvolumes:\n  - {name: golden, source: demo}\n  - {name: pc1, clone: golden@s}\n').allowed, /file driver has no snapshots/);
  assert.match(refusal('volumes: [{name: v}]\n').allowed, /unless source or clone/);
});

test('aoe: exports need a declared volume and a free shelf.slot; a node with san: aoe needs its volume exported', () => {
  const volumes = 'volumes:\n  - { name: golden, size: 1MiB }\n  - { name: n1, size: 1MiB }\n';
  const ok = parseConfig(`${volumes}aoe:\n  enabled: true\n  exports:\n    - { volume: n1, shelf: 3, slot: 4 }\nnodes:\n  - { name: n1, mac: "52:54:00:00:00:01", volume: n1, san: aoe }\n`);
  assert.equal(ok.aoe.bufferCount, 64);
  assert.equal(ok.aoe.exports[0]!.shelf, 3);
  assert.deepEqual(invalidKey(`${volumes}aoe:\n  enabled: true\n  exports:\n    - { volume: nope, shelf: 3, slot: 4 }\n`), { code: 'CONFIG_INVALID', key: 'aoe.exports[0].volume' });
  assert.deepEqual(invalidKey(`${volumes}aoe:\n  enabled: true\n  exports:\n    - { volume: n1, shelf: 3, slot: 4 }\n    - { volume: golden, shelf: 3, slot: 4 }\n`), { code: 'CONFIG_INVALID', key: 'aoe.exports[1].slot' });
  assert.deepEqual(invalidKey(`${volumes}aoe:\n  enabled: true\nnodes:\n  - { name: n1, mac: "52:54:00:00:00:01", volume: n1, san: aoe }\n`), { code: 'CONFIG_INVALID', key: 'nodes[0].san' });
  assert.deepEqual(invalidKey(`${volumes}aoe:\n  exports:\n    - { volume: n1, shelf: 3, slot: 4 }\nnodes:\n  - { name: n1, mac: "52:54:00:00:00:01", volume: n1, san: aoe }\n`), { code: 'CONFIG_INVALID', key: 'nodes[0].san' });
  assert.equal((invalidKey(`${volumes}aoe:\n  exports:\n    - { volume: n1, shelf: 65535, slot: 4 }\n`) as { key: string }).key.startsWith('aoe.exports'), true);
});
