import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../config/load-config.js';
import { isDisklessError } from '../errors/index.js';
import { LAB_DEMO_MAC, labConfigDocument, labOptionsFromConfig } from './lab-config.js';
import { formatTimeline } from './timeline-table.js';
import { BootTimeline } from './boot-timeline.js';

test('the lab configuration validates against the schema and names the demo node and disk', () => {
  const config = validateConfig(labConfigDocument({ dataDir: '/tmp/x' }), 'lab');
  assert.equal(config.server.address, '10.77.0.1');
  assert.equal(config.server.dataDir, '/tmp/x');
  assert.deepEqual(config.dhcp.interfaces, ['br0']);
  assert.deepEqual(
    config.nodes.map((n) => [n.name, n.mac, n.boot, n.volume]),
    [['demo', LAB_DEMO_MAC, 'sanboot', 'demo']],
  );
  assert.deepEqual(config.volumes.map((v) => [v.name, v.source]), [['demo', 'demo']]);
});

test('lab options follow server.address, dhcp.subnet and dhcp.interfaces', () => {
  const config = validateConfig({ server: { address: '192.168.50.2' }, dhcp: { subnet: '192.168.48.0/22', interfaces: ['lanbr'], pool: { start: '192.168.49.1', end: '192.168.49.9' } } }, 't');
  assert.deepEqual(labOptionsFromConfig(config, 'dl-x'), { namespace: 'dl-x', address: '192.168.50.2', prefixLength: 22, bridge: 'lanbr' });
});

test('a server address outside dhcp.subnet is LAB_INVALID_OPTION naming server.address', () => {
  const config = validateConfig({ server: { address: '10.78.0.1' } }, 't');
  assert.throws(() => labOptionsFromConfig(config, 'dl-x'), (e) => isDisklessError(e, 'LAB_INVALID_OPTION') && e.data.field === 'server.address');
});

test('the timeline table has one row per stage with cumulative and step times', () => {
  const t = new BootTimeline();
  t.feed('SeaBIOS (version 1.16.2)\r\n', 150);
  t.feed('Configuring (net0 52:54:00:12:34:56).... ok\r\n', 3300);
  const rows = formatTimeline(t.events).split('\n');
  assert.equal(rows.length, 4);
  assert.match(rows[1]!, /^power-on\s+0\.000\s+\(VM started\)$/);
  assert.match(rows[2]!, /^firmware\s+0\.150\s+0\.150\s+SeaBIOS/);
  assert.match(rows[3]!, /^dhcp\s+3\.300\s+3\.150\s+Configuring/);
});
