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
