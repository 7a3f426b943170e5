import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../config/load-config.js';
import { silentLogger } from '../observe/logger.js';
import { FileStorageDriver } from '../store/file/file-storage-driver.js';
import { demoMbr } from '../store/demo-disk.js';
import { Inventory } from './inventory.js';
import { VolumeTargets } from './volume-targets.js';
import { openStorageDriver, storageChoiceFromConfig } from './storage-choice.js';
import { isDisklessError } from '../errors/index.js';
import { unitStateOf } from '../services/iscsi/unit-state.js';

const initiator = { name: 'iqn.2010-04.org.ipxe:test', address: '10.0.0.9' };

async function setup(t: { after(fn: () => unknown): void }, extra: Record<string, unknown> = {}) {
  const dataDir = await mkdtemp(join(tmpdir(), 'dl-vt-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const img = join(dataDir, 'src.img');
  await writeFile(img, Buffer.alloc(4096, 7));
  const config = validateConfig({
    server: { dataDir },
    volumes: [{ name: 'demo', source: 'demo' }, { name: 'blank', size: '1MiB' }, { name: 'imported', source: img, readOnly: true }],
    nodes: [
      { name: 'a', mac: '52:54:00:00:00:01', volume: 'demo', chap: { username: 'node-a', secret: 'secret-of-node-a' } },
      { name: 'b', mac: '52:54:00:00:00:02', volume: 'blank' },
    ],
    ...extra,
  });
  const driver = new FileStorageDriver({ dataDir });
  let inventory = Inventory.fromConfig(config);
  const targets = VolumeTargets.fromConfig(config, driver, () => inventory, silentLogger());
  await targets.start();
  t.after(() => targets.stop());
  return { targets, driver, config, setInventory: (i: Inventory) => (inventory = i) };
}

test('start creates the declared volumes: the demo marker disk, an empty one, an imported one', async (t) => {
  const { targets, driver } = await setup(t);
  assert.deepEqual((await driver.list()).map((v) => [v.name, v.size]), [['blank', 1 << 20], ['demo', 64 << 20], ['imported', 4096]]);
  const demo = await targets.resolve('iqn.2026-11.io.diskless:demo', initiator);
  assert.ok(demo);
  assert.deepEqual(await demo.device.read(0, 512), demoMbr());
  assert.deepEqual(demo.chap, { username: 'node-a', secret: 'secret-of-node-a' });
  const imported = await targets.resolve('iqn.2026-11.io.diskless:imported', initiator);
  assert.equal(imported?.readOnly, true);
  assert.equal((await imported.device.read(0, 512))[0], 7);
  assert.equal((await targets.resolve('iqn.2026-11.io.diskless:blank', initiator))?.chap, undefined);
});

test('unknown targets resolve to null; SendTargets lists every volume', async (t) => {
  const { targets } = await setup(t);
  assert.equal(await targets.resolve('iqn.2026-11.io.diskless:nope', initiator), null);
  assert.equal(await targets.resolve('iqn.1999-01.other:demo', initiator), null);
  assert.deepEqual((await targets.listTargets(initiator)).map((l) => l.name).sort(), ['iqn.2026-11.io.diskless:blank', 'iqn.2026-11.io.diskless:demo', 'iqn.2026-11.io.diskless:imported']);
});

test('CHAP secrets follow the live inventory', async (t) => {
  const { targets, config, setInventory } = await setup(t);
  setInventory(new Inventory(config.nodes.map((n) => (n.name === 'a' ? { ...n, chap: { username: 'node-a', secret: 'rotated-secret-1' } } : n)), config.volumes, 'exit'));
  assert.equal((await targets.resolve('iqn.2026-11.io.diskless:demo', initiator))?.chap?.secret, 'rotated-secret-1');
});

test('an existing volume is reused, not recreated; a missing import source fails start', async (t) => {
  const first = await setup(t);
  const device = (await first.targets.resolve('iqn.2026-11.io.diskless:blank', initiator))!.device;
  await device.write(0, Buffer.alloc(512, 9));
  await device.flush();
  await first.targets.stop();
  const again = VolumeTargets.fromConfig(first.config, first.driver, () => Inventory.fromConfig(first.config), silentLogger());
  await again.start();
  t.after(() => again.stop());
  assert.equal((await (await again.resolve('iqn.2026-11.io.diskless:blank', initiator))!.device.read(0, 512))[0], 9);
  const bad = VolumeTargets.fromConfig({ ...first.config, volumes: [{ name: 'x', source: '/nonexistent/file.img', readOnly: false }] }, first.driver, () => Inventory.fromConfig(first.config), silentLogger());
  await assert.rejects(bad.start(), (e: unknown) => isDisklessError(e, 'STORE_NOT_FOUND'));
});

test('persistent reservations of a served volume survive a restart (reservations file in the data dir)', async (t) => {
  const first = await setup(t);
  const device = (await first.targets.resolve('iqn.2026-11.io.diskless:blank', initiator))!.device;
  const params = Buffer.alloc(24);
  params.writeBigUInt64BE(0x1122334455667788n, 8); // REGISTER: service action reservation key
  const nexus = { id: 'iqn.2010-04.org.ipxe:test,i,0x400001370000', relativeTargetPort: 1 };
  assert.equal(await unitStateOf(device).persistent!.out(nexus, 0 /* REGISTER */, 0, 0, params), 'good');
  await first.targets.stop();
  const again = VolumeTargets.fromConfig(first.config, first.driver, () => Inventory.fromConfig(first.config), silentLogger());
  await again.start();
  t.after(() => again.stop());
  const reopened = (await again.resolve('iqn.2026-11.io.diskless:blank', initiator))!.device;
  const keys = unitStateOf(reopened).persistent!.in(0 /* READ KEYS */);
  assert.equal(keys.readUInt32BE(4), 8, 'one 8-byte key listed');
  assert.equal(keys.readBigUInt64BE(8), 0x1122334455667788n);
});

test('embedded storage: clones of a golden volume are created from VOLUME@SNAP (snapshotted when missing), diverge independently, survive a restart; the owned driver is closed by stop', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'dl-vt-clone-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const config = validateConfig({
    server: { dataDir },
    volumes: [{ name: 'golden', source: 'demo', readOnly: true }, { name: 'pc1', clone: 'golden@golden' }, { name: 'pc2', clone: 'golden@golden' }],
    nodes: [
      { name: 'a', mac: '52:54:00:00:00:01', volume: 'pc1' },
      { name: 'b', mac: '52:54:00:00:00:02', volume: 'pc2' },
    ],
  });
  assert.equal(config.storage.driver, 'embedded');
  const choice = storageChoiceFromConfig(config);
  assert.deepEqual(choice, { driver: 'embedded', pool: join(dataDir, 'pool') });
  const start = async () => {
    const targets = VolumeTargets.fromConfig(config, () => openStorageDriver(choice), () => Inventory.fromConfig(config), silentLogger());
    await targets.start();
    return targets;
  };
  const device = async (targets: VolumeTargets, volume: string) => (await targets.resolve(`iqn.2026-11.io.diskless:${volume}`, initiator))!.device;
  const first = await start();
  const pc1 = await device(first, 'pc1');
  assert.deepEqual(await pc1.read(0, 512), demoMbr(), 'a clone starts as the golden image');
  await pc1.write(0, Buffer.alloc(512, 0xee));
  await pc1.flush();
  assert.deepEqual(await (await device(first, 'pc2')).read(0, 512), demoMbr(), 'the other clone does not see it');
  await first.stop();

  // stop closed the pool (its lock is free): a second opener sees what the first left.
  const driver = await openStorageDriver(choice);
  const volumes = await driver.list();
  assert.deepEqual(volumes.map((v) => [v.name, v.origin.kind === 'clone' ? `${v.origin.volume}@${v.origin.snapshot}` : v.origin.kind]), [['golden', 'import'], ['pc1', 'golden@golden'], ['pc2', 'golden@golden']]);
  const golden = await driver.open('golden', { snapshot: 'golden' });
  assert.deepEqual(await golden.read(0, 512), demoMbr(), 'the golden snapshot is unchanged');
  await golden.close();
  await driver.close();

  const second = await start();
  t.after(() => second.stop());
  assert.equal((await (await device(second, 'pc1')).read(0, 512))[0], 0xee, 'an existing clone is reused, not re-cloned');
});
