/**
 * Conformance cases for snapshots, clones, rollback, promote, holds and the dependency rules
 * between them (ZFS semantics, see src/store/storage-driver.ts). A driver whose
 * `capabilities` flag is false must answer every call of that family with STORE_UNSUPPORTED:
 * those branches are asserted, not skipped.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { StorageDriver } from '../../../src/store/storage-driver.js';
import { MiB, digest, expectedDigest, rejectsWith, snapshotState, writePattern, type ConformanceCase } from './conformance-support.js';

const BAD_SNAPSHOT_NAMES = ['', 'a@b', 'a/b', '../x', '.x', 'x'.repeat(64)];

/** The refusals a driver without snapshots must give, on an existing volume `v`. */
async function assertNoSnapshots(driver: StorageDriver): Promise<void> {
  await driver.create('v', { size: MiB });
  await rejectsWith(() => driver.snapshot('v', 's'), 'STORE_UNSUPPORTED', 'snapshot');
  await rejectsWith(() => driver.open('v', { snapshot: 's' }), 'STORE_UNSUPPORTED', 'open a snapshot');
  await rejectsWith(() => driver.destroySnapshot('v', 's'), 'STORE_UNSUPPORTED', 'destroySnapshot');
  assert.deepEqual(await driver.listSnapshots('v'), [], 'no snapshots to list');
  assert.deepEqual(await driver.listSnapshots(), []);
}

/** Creates `v` with data and a snapshot `s` when snapshots exist, so the only reason left to refuse is the missing capability. */
async function volumeWithSnapshot(driver: StorageDriver): Promise<void> {
  await driver.create('v', { size: MiB });
  if (driver.capabilities.snapshots) await driver.snapshot('v', 's');
}

export const snapshotCases: ConformanceCase[] = [
  {
    name: 'capabilities: every flag is a boolean and dependent features imply their base',
    async run({ driver }) {
      const c = driver.capabilities;
      for (const [k, v] of Object.entries(c)) assert.equal(typeof v, 'boolean', `capabilities.${k}`);
      assert.equal(typeof driver.name, 'string');
      for (const k of ['clones', 'rollback', 'holds', 'sendReceive'] as const) if (c[k]) assert.ok(c.snapshots, `${k} without snapshots`);
      if (c.promote) assert.ok(c.clones, 'promote without clones');
      if (c.resumableReceive) assert.ok(c.sendReceive, 'resumable receive without send/receive');
    },
  },
  {
    name: 'snapshots: contents are frozen while the volume keeps changing; snapshots open read-only',
    async run({ driver }) {
      if (!driver.capabilities.snapshots) return assertNoSnapshots(driver);
      await driver.create('v', { size: 16 * MiB });
      await writePattern(driver, 'v', 0, 4 * MiB, 1);
      const s1 = await driver.snapshot('v', 's1');
      assert.equal(s1.volume, 'v');
      assert.equal(s1.name, 's1');
      assert.ok(typeof s1.guid === 'string' && s1.guid.length > 0, `guid ${s1.guid}`);
      assert.deepEqual(s1.clones, []);
      assert.deepEqual(s1.holds, []);
      assert.ok(!Number.isNaN(Date.parse(s1.createdAt)), `createdAt ${s1.createdAt}`);
      const frozen = expectedDigest(16 * MiB, [{ offset: 0, length: 4 * MiB, seed: 1 }]);

      // A snapshot device opened before the volume changes keeps showing the old contents.
      const snapDev = await driver.open('v', { snapshot: 's1', readOnly: false });
      try {
        assert.equal(snapDev.readOnly, true, 'a snapshot opens read-only even when asked otherwise');
        assert.equal(snapDev.size, 16 * MiB);
        await rejectsWith(() => snapDev.write(0, Buffer.alloc(512)), 'STORE_READ_ONLY', 'write to a snapshot');
        await writePattern(driver, 'v', MiB, MiB, 2);
        await writePattern(driver, 'v', 8 * MiB, MiB, 2);
        const dev = await driver.open('v');
        if (dev.capabilities.unmap) await dev.unmap(3 * MiB, MiB);
        await dev.write(0, Buffer.alloc(512, 0xff), { fua: true });
        await dev.close();
        const whole = await snapDev.read(0, 16 * MiB);
        assert.equal(createHash('sha256').update(whole).digest('hex'), frozen, 'the open snapshot device still reads the old contents');
      } finally {
        await snapDev.close();
      }
      assert.equal(await digest(driver, 'v', 's1'), frozen, 's1 after the volume changed');
      assert.notEqual(await digest(driver, 'v'), frozen, 'the volume did change');

      const s2 = await driver.snapshot('v', 's2');
      assert.notEqual(s2.guid, s1.guid, 'guids are unique');
      const atS2 = await digest(driver, 'v');
      await writePattern(driver, 'v', 12 * MiB, MiB, 3);
      assert.equal(await digest(driver, 'v', 's2'), atS2);
      assert.equal(await digest(driver, 'v', 's1'), frozen);
      assert.deepEqual((await driver.listSnapshots('v')).map((s) => s.name), ['s1', 's2'], 'creation order');

      await rejectsWith(() => driver.snapshot('v', 's1'), 'STORE_EXISTS', 'snapshot name taken');
      await rejectsWith(() => driver.snapshot('nope', 's1'), 'STORE_NOT_FOUND', 'snapshot of a missing volume');
      await rejectsWith(() => driver.open('v', { snapshot: 'nope' }), 'STORE_NOT_FOUND', 'open a missing snapshot');
      for (const n of BAD_SNAPSHOT_NAMES) await rejectsWith(() => driver.snapshot('v', n), 'STORE_INVALID_NAME', `snapshot name ${JSON.stringify(n)}`);
      assert.equal((await driver.listSnapshots('v')).length, 2, 'refused snapshots left nothing behind');
    },
  },
  {
    name: 'snapshots: listed by volume then creation; destroySnapshot and destroy -r follow the dependency rules',
    async run({ driver }) {
      if (!driver.capabilities.snapshots) return assertNoSnapshots(driver);
      await driver.create('b', { size: 4 * MiB });
      await driver.create('a', { size: 4 * MiB });
      await writePattern(driver, 'a', 0, MiB, 1);
      await driver.snapshot('b', 'z');
      await driver.snapshot('a', 'y');
      await writePattern(driver, 'a', MiB, MiB, 2);
      await driver.snapshot('b', 'x');
      await driver.snapshot('a', 'w');
      assert.deepEqual((await driver.listSnapshots()).map((s) => `${s.volume}@${s.name}`), ['a@y', 'a@w', 'b@z', 'b@x']);
      const w = await digest(driver, 'a', 'w');

      await driver.destroySnapshot('a', 'y');
      assert.deepEqual((await driver.listSnapshots('a')).map((s) => s.name), ['w']);
      assert.equal(await digest(driver, 'a', 'w'), w, 'a later snapshot keeps its data when an earlier one goes');
      await rejectsWith(() => driver.destroySnapshot('a', 'y'), 'STORE_NOT_FOUND', 'destroy a destroyed snapshot');
      await rejectsWith(() => driver.destroySnapshot('nope', 'y'), 'STORE_NOT_FOUND', 'snapshot of a missing volume');

      await rejectsWith(() => driver.destroy('b'), 'STORE_HAS_DEPENDENTS', 'destroy a volume with snapshots');
      assert.deepEqual((await driver.listSnapshots('b')).map((s) => s.name), ['z', 'x'], 'refused destroy changed nothing');
      await driver.destroy('b', { recursive: true });
      assert.equal(await driver.exists('b'), false);
      await rejectsWith(() => driver.listSnapshots('b'), 'STORE_NOT_FOUND', 'listSnapshots of a destroyed volume');
      assert.deepEqual((await driver.listSnapshots()).map((s) => `${s.volume}@${s.name}`), ['a@w']);
      // A snapshot name may be reused once the old one is gone.
      await driver.snapshot('a', 'y');
      assert.deepEqual((await driver.listSnapshots('a')).map((s) => s.name), ['w', 'y']);
    },
  },
  {
    name: 'clones: writable, independent of the origin and of each other; the origin snapshot is unchanged',
    async run(fx) {
      let driver = fx.driver;
      if (!driver.capabilities.clones) {
        await volumeWithSnapshot(driver);
        await rejectsWith(() => driver.clone('v', 's', 'c'), 'STORE_UNSUPPORTED', 'clone');
        assert.equal(await driver.exists('c'), false);
        return;
      }
      await driver.create('v', { size: 16 * MiB, blockSize: 4096 });
      await writePattern(driver, 'v', 0, 8 * MiB, 1);
      await driver.snapshot('v', 'gold');
      const base = { offset: 0, length: 8 * MiB, seed: 1 };
      const c1 = await driver.clone('v', 'gold', 'c1');
      await driver.clone('v', 'gold', 'c2');
      assert.equal(c1.name, 'c1');
      assert.equal(c1.size, 16 * MiB);
      assert.equal(c1.blockSize, 4096, 'a clone keeps its origin block size');
      assert.deepEqual(c1.origin, { kind: 'clone', volume: 'v', snapshot: 'gold' });
      assert.equal(await digest(driver, 'c1'), expectedDigest(16 * MiB, [base]), 'a new clone reads its snapshot');

      await writePattern(driver, 'c1', 0, MiB, 2);
      await writePattern(driver, 'c2', MiB, MiB, 3);
      await writePattern(driver, 'c2', 12 * MiB, MiB, 3);
      await writePattern(driver, 'v', 2 * MiB, MiB, 4);
      const want = {
        c1: expectedDigest(16 * MiB, [base, { offset: 0, length: MiB, seed: 2 }]),
        c2: expectedDigest(16 * MiB, [base, { offset: MiB, length: MiB, seed: 3 }, { offset: 12 * MiB, length: MiB, seed: 3 }]),
        v: expectedDigest(16 * MiB, [base, { offset: 2 * MiB, length: MiB, seed: 4 }]),
        gold: expectedDigest(16 * MiB, [base]),
      };
      const check = async (d: StorageDriver, when: string) => {
        assert.equal(await digest(d, 'c1'), want.c1, `c1 ${when}`);
        assert.equal(await digest(d, 'c2'), want.c2, `c2 ${when}`);
        assert.equal(await digest(d, 'v'), want.v, `v ${when}`);
        assert.equal(await digest(d, 'v', 'gold'), want.gold, `v@gold ${when}`);
      };
      await check(driver, 'after writes');
      assert.deepEqual((await driver.listSnapshots('v'))[0]!.clones, ['c1', 'c2']);

      // A clone can be snapshotted and cloned in turn.
      await driver.snapshot('c1', 'mid');
      const c3 = await driver.clone('c1', 'mid', 'c3');
      assert.deepEqual(c3.origin, { kind: 'clone', volume: 'c1', snapshot: 'mid' });
      assert.equal(await digest(driver, 'c3'), want.c1);

      await rejectsWith(() => driver.clone('v', 'gold', 'c1'), 'STORE_EXISTS', 'clone onto an existing name');
      await rejectsWith(() => driver.clone('v', 'nope', 'c9'), 'STORE_NOT_FOUND', 'clone of a missing snapshot');
      await rejectsWith(() => driver.clone('nope', 'gold', 'c9'), 'STORE_NOT_FOUND', 'clone of a missing volume');
      await rejectsWith(() => driver.clone('v', 'gold', '../c9'), 'STORE_INVALID_NAME', 'clone to a bad name');
      assert.equal(await driver.exists('c9'), false);

      driver = await fx.reopen();
      await check(driver, 'after a restart');
      assert.deepEqual((await driver.info('c2')).origin, { kind: 'clone', volume: 'v', snapshot: 'gold' });
      assert.deepEqual((await driver.listSnapshots('v'))[0]!.clones, ['c1', 'c2']);
    },
  },
  {
    name: 'dependencies: a cloned snapshot cannot be destroyed, not even by destroy -r, until its clones are gone',
    async run({ driver }) {
      if (!driver.capabilities.clones) {
        await volumeWithSnapshot(driver);
        await rejectsWith(() => driver.clone('v', 's', 'c'), 'STORE_UNSUPPORTED', 'clone');
        return;
      }
      await driver.create('v', { size: 4 * MiB });
      await writePattern(driver, 'v', 0, MiB, 1);
      await driver.snapshot('v', 's');
      await driver.snapshot('v', 'later');
      await driver.clone('v', 's', 'c');
      const state = await snapshotState(driver);
      await rejectsWith(() => driver.destroySnapshot('v', 's'), 'STORE_HAS_DEPENDENTS', 'destroy a cloned snapshot');
      await rejectsWith(() => driver.destroy('v'), 'STORE_HAS_DEPENDENTS', 'destroy a volume with snapshots');
      await rejectsWith(() => driver.destroy('v', { recursive: true }), 'STORE_HAS_DEPENDENTS', 'destroy -r a volume whose snapshot has a clone');
      assert.deepEqual(await snapshotState(driver), state, 'refused destroys changed nothing');
      assert.equal(await digest(driver, 'v', 'later'), expectedDigest(4 * MiB, [{ offset: 0, length: MiB, seed: 1 }]));
      await driver.destroy('c');
      assert.deepEqual((await driver.listSnapshots('v'))[0]!.clones, []);
      await driver.destroySnapshot('v', 's');
      await driver.destroy('v', { recursive: true });
      assert.deepEqual(await driver.list(), []);
      assert.deepEqual(await driver.listSnapshots(), []);
    },
  },
  {
    name: 'rollback: to the latest snapshot discards every later write',
    async run({ driver }) {
      if (!driver.capabilities.rollback) {
        await volumeWithSnapshot(driver);
        await rejectsWith(() => driver.rollback('v', 's'), 'STORE_UNSUPPORTED', 'rollback');
        return;
      }
      await driver.create('v', { size: 8 * MiB });
      await writePattern(driver, 'v', 0, 2 * MiB, 1);
      await driver.snapshot('v', 's1');
      const atS1 = await digest(driver, 'v');
      await writePattern(driver, 'v', MiB, 3 * MiB, 2);
      await driver.rollback('v', 's1');
      assert.equal(await digest(driver, 'v'), atS1);
      assert.ok((await driver.info('v')).written < 512 * 1024, 'nothing written since the snapshot after a rollback');
      // The volume stays writable and can roll back again.
      await writePattern(driver, 'v', 6 * MiB, MiB, 3);
      await driver.rollback('v', 's1');
      assert.equal(await digest(driver, 'v'), atS1);
      await rejectsWith(() => driver.rollback('v', 'nope'), 'STORE_NOT_FOUND', 'rollback to a missing snapshot');
      await rejectsWith(() => driver.rollback('nope', 's1'), 'STORE_NOT_FOUND', 'rollback of a missing volume');
    },
  },
  {
    name: 'rollback: past later snapshots needs destroyLater, which destroys them but refuses cloned or held ones',
    async run({ driver }) {
      if (!driver.capabilities.rollback) {
        await volumeWithSnapshot(driver);
        await rejectsWith(() => driver.rollback('v', 's', { destroyLater: true }), 'STORE_UNSUPPORTED', 'rollback -r');
        return;
      }
      await driver.create('v', { size: 8 * MiB });
      const take = async (seed: number, snap: string) => {
        await writePattern(driver, 'v', seed * MiB, MiB, seed);
        await driver.snapshot('v', snap);
        return digest(driver, 'v');
      };
      const d1 = await take(1, 's1');
      const d2 = await take(2, 's2');
      await take(3, 's3');
      await writePattern(driver, 'v', 0, MiB, 9);
      const now = await digest(driver, 'v');
      let state = await snapshotState(driver, 'v');
      await rejectsWith(() => driver.rollback('v', 's1'), 'STORE_HAS_DEPENDENTS', 'rollback past s2 and s3 without destroyLater');
      assert.equal(await digest(driver, 'v'), now, 'refused rollback left the volume as it was');
      assert.deepEqual(await snapshotState(driver, 'v'), state);

      await driver.rollback('v', 's2', { destroyLater: true });
      assert.equal(await digest(driver, 'v'), d2);
      assert.deepEqual((await driver.listSnapshots('v')).map((s) => s.name), ['s1', 's2']);

      if (driver.capabilities.clones) {
        await driver.clone('v', 's2', 'c');
        state = await snapshotState(driver, 'v');
        await rejectsWith(() => driver.rollback('v', 's1', { destroyLater: true }), 'STORE_HAS_DEPENDENTS', 'rollback -r past a cloned snapshot');
        assert.deepEqual(await snapshotState(driver, 'v'), state);
        assert.equal(await digest(driver, 'v'), d2);
        await driver.destroy('c');
      }
      if (driver.capabilities.holds) {
        await driver.hold('v', 's2', 'keep');
        state = await snapshotState(driver, 'v');
        await rejectsWith(() => driver.rollback('v', 's1', { destroyLater: true }), 'STORE_HELD', 'rollback -r past a held snapshot');
        assert.deepEqual(await snapshotState(driver, 'v'), state);
        assert.equal(await digest(driver, 'v'), d2);
        await driver.release('v', 's2', 'keep');
      }
      await driver.rollback('v', 's1', { destroyLater: true });
      assert.equal(await digest(driver, 'v'), d1);
      assert.deepEqual((await driver.listSnapshots('v')).map((s) => s.name), ['s1']);
    },
  },
  {
    name: 'promote: origin and clone swap roles as in zfs promote, every byte where it was',
    async run({ driver }) {
      if (!driver.capabilities.promote) {
        await volumeWithSnapshot(driver);
        if (driver.capabilities.clones) await driver.clone('v', 's', 'c');
        await rejectsWith(() => driver.promote(driver.capabilities.clones ? 'c' : 'v'), 'STORE_UNSUPPORTED', 'promote');
        return;
      }
      await driver.create('v', { size: 8 * MiB });
      await writePattern(driver, 'v', 0, MiB, 1);
      const s1 = await driver.snapshot('v', 's1');
      await writePattern(driver, 'v', MiB, MiB, 2);
      const s2 = await driver.snapshot('v', 's2');
      await driver.clone('v', 's2', 'c');
      await writePattern(driver, 'v', 2 * MiB, MiB, 3);
      const s3 = await driver.snapshot('v', 's3');
      await writePattern(driver, 'c', 3 * MiB, MiB, 4);
      await driver.snapshot('c', 'own');
      const before = { v: await digest(driver, 'v'), s1: await digest(driver, 'v', 's1'), s2: await digest(driver, 'v', 's2'), s3: await digest(driver, 'v', 's3'), c: await digest(driver, 'c'), own: await digest(driver, 'c', 'own') };
      const vOrigin = (await driver.info('v')).origin;

      await driver.promote('c');
      // The cloned snapshot and those before it moved to c; later ones stayed with v.
      const cSnaps = await driver.listSnapshots('c');
      assert.deepEqual(cSnaps.map((s) => s.name), ['s1', 's2', 'own']);
      assert.deepEqual((await driver.listSnapshots('v')).map((s) => s.name), ['s3']);
      assert.equal(cSnaps[0]!.guid, s1.guid, 'a moved snapshot keeps its guid');
      assert.equal(cSnaps[1]!.guid, s2.guid);
      assert.deepEqual(cSnaps[1]!.clones, ['v'], 'the old origin is now the clone');
      assert.equal((await driver.listSnapshots('v'))[0]!.guid, s3.guid);
      assert.deepEqual((await driver.info('v')).origin, { kind: 'clone', volume: 'c', snapshot: 's2' });
      assert.deepEqual((await driver.info('c')).origin, vOrigin, 'the promoted clone takes the origin its origin had');
      assert.equal(await digest(driver, 'v'), before.v);
      assert.equal(await digest(driver, 'v', 's3'), before.s3);
      assert.equal(await digest(driver, 'c', 's1'), before.s1);
      assert.equal(await digest(driver, 'c', 's2'), before.s2);
      assert.equal(await digest(driver, 'c'), before.c);
      assert.equal(await digest(driver, 'c', 'own'), before.own);

      // Now v is the dependent one: it can go, c@s2 cannot while v exists.
      await rejectsWith(() => driver.destroySnapshot('c', 's2'), 'STORE_HAS_DEPENDENTS', 'destroy the snapshot v now hangs off');
      await driver.destroy('v', { recursive: true });
      assert.deepEqual((await driver.listSnapshots('c'))[1]!.clones, []);
      assert.equal(await digest(driver, 'c', 's1'), before.s1, 'the promoted clone no longer needs its old origin');
      assert.equal(await digest(driver, 'c'), before.c);
    },
  },
  {
    name: 'promote: refused with STORE_EXISTS when a moving snapshot name is taken on the clone, STORE_NOT_CLONE for a non-clone; changes nothing',
    async run({ driver }) {
      if (!driver.capabilities.promote) {
        await volumeWithSnapshot(driver);
        await rejectsWith(() => driver.promote('v'), 'STORE_UNSUPPORTED', 'promote');
        return;
      }
      await driver.create('v', { size: 4 * MiB });
      await writePattern(driver, 'v', 0, MiB, 1);
      await driver.snapshot('v', 'dup');
      await driver.snapshot('v', 'base');
      await driver.clone('v', 'base', 'c');
      await driver.snapshot('c', 'dup');
      const state = await snapshotState(driver);
      await rejectsWith(() => driver.promote('c'), 'STORE_EXISTS', 'promote with a snapshot name on both sides');
      assert.deepEqual(await snapshotState(driver), state);
      assert.deepEqual((await driver.info('c')).origin, { kind: 'clone', volume: 'v', snapshot: 'base' });
      await rejectsWith(() => driver.promote('nope'), 'STORE_NOT_FOUND', 'promote a missing volume');
      await rejectsWith(() => driver.promote('v'), 'STORE_NOT_CLONE', 'promote a volume that is not a clone');
      assert.deepEqual(await snapshotState(driver), state, 'refused promotes changed nothing');
    },
  },
  {
    name: 'holds: a held snapshot cannot be destroyed until every hold is released',
    async run(fx) {
      let driver = fx.driver;
      if (!driver.capabilities.holds) {
        await volumeWithSnapshot(driver);
        await rejectsWith(() => driver.hold('v', 's', 'keep'), 'STORE_UNSUPPORTED', 'hold');
        await rejectsWith(() => driver.release('v', 's', 'keep'), 'STORE_UNSUPPORTED', 'release');
        return;
      }
      await driver.create('v', { size: 4 * MiB });
      await driver.snapshot('v', 's');
      await driver.hold('v', 's', 'b-tag');
      await driver.hold('v', 's', 'a-tag');
      assert.deepEqual((await driver.listSnapshots('v'))[0]!.holds, ['a-tag', 'b-tag'], 'sorted');
      await rejectsWith(() => driver.hold('v', 's', 'a-tag'), 'STORE_EXISTS', 'the same tag twice');
      await rejectsWith(() => driver.hold('v', 'nope', 'x'), 'STORE_NOT_FOUND', 'hold a missing snapshot');
      await rejectsWith(() => driver.hold('v', 's', ''), 'STORE_INVALID_NAME', 'empty tag');
      const state = await snapshotState(driver);
      await rejectsWith(() => driver.destroySnapshot('v', 's'), 'STORE_HELD', 'destroy a held snapshot');
      await rejectsWith(() => driver.destroy('v', { recursive: true }), 'STORE_HELD', 'destroy -r a volume with a held snapshot');
      assert.deepEqual(await snapshotState(driver), state, 'refusals changed nothing');

      driver = await fx.reopen();
      assert.deepEqual((await driver.listSnapshots('v'))[0]!.holds, ['a-tag', 'b-tag'], 'holds survive a restart');
      await driver.release('v', 's', 'a-tag');
      await rejectsWith(() => driver.destroySnapshot('v', 's'), 'STORE_HELD', 'one hold left');
      await driver.release('v', 's', 'b-tag');
      await rejectsWith(() => driver.release('v', 's', 'b-tag'), 'STORE_NOT_FOUND', 'release twice');
      assert.deepEqual((await driver.listSnapshots('v'))[0]!.holds, []);
      await driver.destroySnapshot('v', 's');
      await driver.destroy('v');
    },
  },
];
