import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../config/load-config.js';
import { isDisklessError } from '../errors/index.js';
import type { BlockDevice } from '../store/block-device.js';
import { FileAoeStateStore } from '../services/aoe/aoe-state-store.js';
import { aoeTargetSpecs } from './aoe-exports.js';

const config = parseConfig(`
server: { dataDir: /srv/dl }
dhcp: { interfaces: [br9] }
volumes:
  - { name: golden, size: 1MiB }
  - { name: n1, size: 1MiB }
  - { name: shared, size: 1MiB }
aoe:
  enabled: true
  exports:
    - { volume: n1, shelf: 1, slot: 1 }
    - { volume: shared, shelf: 1, slot: 2, interfaces: [eth7], allow: [] }
    - { volume: golden, shelf: 1, slot: 3, allow: ["AA-BB-CC-00-00-01"] }
nodes:
  - { name: n1, mac: "52:54:00:00:00:01", volume: n1, san: aoe }
  - { name: n2, mac: "52:54:00:00:00:02", volume: n1 }
`);

test('aoe exports: the mask list defaults to the MACs of the nodes booting the volume; interfaces and state paths', () => {
  const device = { size: 1 << 20 } as BlockDevice;
  const specs = aoeTargetSpecs(config, { device: (name: string) => (['golden', 'n1', 'shared'].includes(name) ? { device, readOnly: false } : undefined) });
  assert.deepEqual(specs.map((s) => [s.name, s.interfaces, s.allow]), [
    ['n1', ['br9'], ['52:54:00:00:00:01', '52:54:00:00:00:02']],
    ['shared', ['eth7'], []],
    ['golden', ['br9'], ['aa:bb:cc:00:00:01']],
  ]);
  assert.equal((specs[0]!.state as FileAoeStateStore).path, '/srv/dl/aoe/e1.1.json');
  assert.throws(() => aoeTargetSpecs(config, { device: () => undefined }), (e: unknown) => isDisklessError(e, 'CONFIG_INVALID'));
});
