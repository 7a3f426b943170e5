/**
 * Conformance cases for space accounting (`zfs list` used/referenced/written) and scrub.
 * Writes are whole, aligned MiBs of incompressible data, flushed and closed before `info`
 * is asked, so every driver's figures must land within `assertAbout`'s margin of the bytes
 * written whatever its extent or record size.
 */
import assert from 'node:assert/strict';
import { MiB, assertAbout, digest, rejectsWith, writePattern, type ConformanceCase } from './conformance-support.js';

export const spaceCases: ConformanceCase[] = [
  {
    name: 'space: referenced and used follow the bytes written; overwrites cost nothing; destroy frees the name',
    async run({ driver }) {
      await driver.create('v', { size: 32 * MiB });
      await writePattern(driver, 'v', 0, 4 * MiB, 1);
      let v = await driver.info('v');
      assertAbout(v.referenced, 4 * MiB, 'referenced after 4 MiB');
      assertAbout(v.used, 4 * MiB, 'used after 4 MiB');
      assertAbout(v.written, 4 * MiB, 'written with no snapshot = everything');
      await writePattern(driver, 'v', 0, 4 * MiB, 2);
      v = await driver.info('v');
      assertAbout(v.referenced, 4 * MiB, 'referenced after overwriting the same 4 MiB');
      assertAbout(v.used, 4 * MiB, 'used after overwriting the same 4 MiB');
      await writePattern(driver, 'v', 16 * MiB, 2 * MiB, 3);
      assertAbout((await driver.info('v')).used, 6 * MiB, 'used after 2 more MiB elsewhere');
      const listed = (await driver.list()).find((x) => x.name === 'v')!;
      assertAbout(listed.used, 6 * MiB, 'list reports the same used');
      await driver.destroy('v');
      await driver.create('v', { size: 32 * MiB });
      assert.ok((await driver.info('v')).used < MiB, 'a volume re-created under a destroyed name starts empty');
    },
  },
  {
    name: 'space: written counts bytes since the latest snapshot; a snapshot uses what only it holds; destroying it frees that',
    async run({ driver }) {
      if (!driver.capabilities.snapshots) {
        await driver.create('v', { size: MiB });
        await rejectsWith(() => driver.snapshot('v', 's1'), 'STORE_UNSUPPORTED', 'snapshot');
        return;
      }
      await driver.create('v', { size: 32 * MiB });
      await writePattern(driver, 'v', 0, 4 * MiB, 1);
      let s1 = await driver.snapshot('v', 's1');
      assertAbout(s1.referenced, 4 * MiB, 's1 referenced');
      assertAbout(s1.written, 4 * MiB, 's1 written (everything before it)');
      assertAbout(s1.used, 0, 's1 used while it shares everything');
      assertAbout((await driver.info('v')).written, 0, 'volume written right after a snapshot');

      // 1 MiB overwritten, 1 MiB new: the snapshot alone now holds the old 1 MiB.
      await writePattern(driver, 'v', 0, MiB, 2);
      await writePattern(driver, 'v', 8 * MiB, MiB, 2);
      let v = await driver.info('v');
      assertAbout(v.written, 2 * MiB, 'written since s1');
      assertAbout(v.referenced, 5 * MiB, 'referenced: 3 old + 2 new');
      assertAbout(v.used, 6 * MiB, 'used: 5 referenced + 1 held only by s1');
      s1 = (await driver.listSnapshots('v'))[0]!;
      assertAbout(s1.used, MiB, 's1 used: the overwritten MiB');
      assertAbout(s1.referenced, 4 * MiB, 's1 referenced does not change');

      const s2 = await driver.snapshot('v', 's2');
      assertAbout(s2.written, 2 * MiB, 's2 written: what changed between s1 and s2');
      assertAbout((await driver.info('v')).written, 0, 'volume written right after s2');

      await driver.destroySnapshot('v', 's1');
      v = await driver.info('v');
      assertAbout(v.used, 5 * MiB, 'used after destroying s1 (its MiB freed)');
      assertAbout(v.referenced, 5 * MiB, 'referenced unchanged by destroying a snapshot');
    },
  },
  {
    name: 'space: a clone references what its origin does, uses little until it diverges, and its writes are its own',
    async run({ driver }) {
      if (!driver.capabilities.clones) {
        await driver.create('v', { size: MiB });
        if (driver.capabilities.snapshots) await driver.snapshot('v', 'gold');
        await rejectsWith(() => driver.clone('v', 'gold', 'c'), 'STORE_UNSUPPORTED', 'clone');
        return;
      }
      await driver.create('v', { size: 32 * MiB });
      await writePattern(driver, 'v', 0, 8 * MiB, 1);
      await driver.snapshot('v', 'gold');
      await driver.clone('v', 'gold', 'c');
      let c = await driver.info('c');
      assertAbout(c.referenced, 8 * MiB, 'clone referenced = its origin snapshot');
      assertAbout(c.used, 0, 'a new clone uses (almost) nothing');
      const vUsed = (await driver.info('v')).used;
      assertAbout(vUsed, 8 * MiB, 'the origin is charged for the shared blocks');

      await writePattern(driver, 'c', 0, 2 * MiB, 2);
      await writePattern(driver, 'c', 20 * MiB, MiB, 2);
      c = await driver.info('c');
      assertAbout(c.used, 3 * MiB, 'clone used after diverging by 3 MiB');
      assertAbout(c.referenced, 9 * MiB, 'clone referenced: 6 shared + 3 own');
      assertAbout((await driver.info('v')).used, vUsed, 'the origin is not charged for the clone writes', 256 * 1024);

      await driver.destroy('c');
      assertAbout((await driver.info('v')).used, vUsed, 'destroying the clone leaves the origin as it was', 256 * 1024);
      assertAbout((await driver.listSnapshots('v'))[0]!.used, 0, 'gold still shares everything with v');
    },
  },
  {
    name: 'scrub: a healthy volume and pool scrub clean and keep their data',
    async run({ driver }) {
      await driver.create('v', { size: 16 * MiB });
      await writePattern(driver, 'v', 0, 4 * MiB, 1);
      if (!driver.capabilities.scrub) {
        await rejectsWith(() => driver.scrub('v'), 'STORE_UNSUPPORTED', 'scrub a volume');
        await rejectsWith(() => driver.scrub(), 'STORE_UNSUPPORTED', 'scrub the pool');
        return;
      }
      if (driver.capabilities.snapshots) {
        await driver.snapshot('v', 's');
        await writePattern(driver, 'v', 0, MiB, 2);
      }
      if (driver.capabilities.clones) {
        await driver.clone('v', 's', 'c');
        await writePattern(driver, 'c', 8 * MiB, MiB, 3);
      }
      const before = await digest(driver, 'v');
      const one = await driver.scrub('v');
      assert.equal(one.volume, 'v');
      assert.deepEqual({ errors: one.errors, repaired: one.repaired, unrecoverable: one.unrecoverable }, { errors: 0, repaired: 0, unrecoverable: 0 });
      assert.ok(one.bytesChecked >= 4 * MiB, `scrub of v checked ${one.bytesChecked} bytes, fewer than the 4 MiB it holds`);
      const all = await driver.scrub();
      assert.equal(all.volume, undefined);
      assert.deepEqual({ errors: all.errors, repaired: all.repaired, unrecoverable: all.unrecoverable }, { errors: 0, repaired: 0, unrecoverable: 0 });
      assert.ok(all.bytesChecked >= one.bytesChecked, `pool scrub checked ${all.bytesChecked} < volume scrub ${one.bytesChecked}`);
      assert.equal(await digest(driver, 'v'), before, 'scrub changed no data');
      await rejectsWith(() => driver.scrub('nope'), 'STORE_NOT_FOUND', 'scrub a missing volume');
    },
  },
];
