/**
 * Conformance cases for send/receive (`zfs send [-i] | zfs receive [-s|-F]`): full and
 * incremental round trips byte-identical, guids kept, wrong bases, corrupt and truncated
 * streams rejected whole with nothing changed, and resumable receives (token, resume, abort).
 * Streams travel in memory between two volumes of one driver.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { StorageDriver } from '../../../src/store/storage-driver.js';
import { KiB, MiB, collect, digest, flipByte, rejectsWith, replay, snapshotState, writePattern, type ConformanceCase } from './conformance-support.js';

/** A volume `v` of 16 MiB: seed 1 on [0, 3 MiB) and [10, 11 MiB), snapshot s1; seed 2 on [2, 3 MiB) and one block at 12 MiB, snapshot s2. */
async function sourceVolume(driver: StorageDriver): Promise<void> {
  await driver.create('v', { size: 16 * MiB });
  await writePattern(driver, 'v', 0, 3 * MiB, 1);
  await writePattern(driver, 'v', 10 * MiB, MiB, 1);
  await driver.snapshot('v', 's1');
  await writePattern(driver, 'v', 2 * MiB, MiB, 2);
  await writePattern(driver, 'v', 12 * MiB, 4 * KiB, 2);
  await driver.snapshot('v', 's2');
}

/** What a driver without send/receive must answer. */
async function assertNoSendReceive(driver: StorageDriver): Promise<void> {
  await driver.create('v', { size: MiB });
  if (driver.capabilities.snapshots) await driver.snapshot('v', 's1');
  await rejectsWith(() => collect(driver.send('v', 's1')), 'STORE_UNSUPPORTED', 'send');
  await rejectsWith(() => driver.receive('r', replay(Buffer.alloc(4096))), 'STORE_UNSUPPORTED', 'receive');
  assert.equal(await driver.exists('r'), false);
}

export const streamCases: ConformanceCase[] = [
  {
    name: 'send/receive: a full stream round-trips byte-identical, holes are not sent, the guid is kept',
    async run({ driver }) {
      if (!driver.capabilities.sendReceive) return assertNoSendReceive(driver);
      await sourceVolume(driver);
      const s1 = (await driver.listSnapshots('v'))[0]!;
      const stream = await collect(driver.send('v', 's1'));
      assert.ok(stream.length >= 4 * MiB && stream.length <= 4 * MiB * 1.05 + 64 * KiB, `full stream of 4 MiB of data in a 16 MiB volume is ${stream.length} bytes`);
      const got = await driver.receive('r', replay(stream));
      assert.equal(got.volume, 'r');
      assert.equal(got.name, 's1');
      assert.equal(got.guid, s1.guid, 'a received snapshot keeps its guid');
      const r = await driver.info('r');
      assert.equal(r.size, 16 * MiB);
      assert.equal(r.blockSize, 512);
      assert.deepEqual(r.origin, { kind: 'receive' });
      const want = await digest(driver, 'v', 's1');
      assert.equal(await digest(driver, 'r', 's1'), want);
      assert.equal(await digest(driver, 'r'), want, 'the received volume reads as its snapshot');
      await rejectsWith(() => driver.receive('r', replay(stream)), 'STORE_EXISTS', 'full receive onto an existing volume');
      await rejectsWith(() => collect(driver.send('v', 'nope')), 'STORE_NOT_FOUND', 'send a missing snapshot');
      await rejectsWith(() => collect(driver.send('nope', 's1')), 'STORE_NOT_FOUND', 'send from a missing volume');

      // A 4096-byte-block volume keeps its block size across the wire; the received volume is writable.
      await driver.create('b4k', { size: 4 * MiB, blockSize: 4096 });
      await writePattern(driver, 'b4k', MiB, MiB, 5);
      await driver.snapshot('b4k', 'x');
      await driver.receive('r4k', driver.send('b4k', 'x'));
      assert.equal((await driver.info('r4k')).blockSize, 4096);
      assert.equal(await digest(driver, 'r4k'), await digest(driver, 'b4k', 'x'));
      await writePattern(driver, 'r4k', 0, MiB, 6);
    },
  },
  {
    name: 'send/receive: incremental streams carry only the changes and land byte-identical',
    async run(fx) {
      let driver = fx.driver;
      if (!driver.capabilities.sendReceive) return assertNoSendReceive(driver);
      await sourceVolume(driver);
      await driver.receive('r', driver.send('v', 's1'));
      const inc = await collect(driver.send('v', 's2', { base: 's1' }));
      // 1 MiB + 4 KiB changed; a store may round the 4 KiB up to one extent or record (<= 128 KiB).
      assert.ok(inc.length >= MiB && inc.length <= MiB * 1.05 + 128 * KiB + 64 * KiB, `incremental stream for 1 MiB + 4 KiB changed is ${inc.length} bytes`);
      const got = await driver.receive('r', replay(inc, 7 * KiB + 512));
      assert.equal(got.name, 's2');
      assert.equal(got.guid, (await driver.listSnapshots('v'))[1]!.guid);
      assert.deepEqual((await driver.listSnapshots('r')).map((s) => s.name), ['s1', 's2']);
      assert.equal(await digest(driver, 'r', 's2'), await digest(driver, 'v', 's2'));
      assert.equal(await digest(driver, 'r', 's1'), await digest(driver, 'v', 's1'));
      assert.equal(await digest(driver, 'r'), await digest(driver, 'v', 's2'));

      // A third step, after a restart on both sides (one driver here).
      await writePattern(driver, 'v', 0, 64 * KiB, 3);
      await driver.snapshot('v', 's3');
      driver = await fx.reopen();
      await driver.receive('r', driver.send('v', 's3', { base: 's2' }));
      assert.equal(await digest(driver, 'r'), await digest(driver, 'v', 's3'));
      await rejectsWith(() => collect(driver.send('v', 's3', { base: 'nope' })), 'STORE_NOT_FOUND', 'incremental from a missing base');
    },
  },
  {
    name: 'receive: an incremental onto the wrong base or a changed volume is refused and changes nothing (force discards changes)',
    async run({ driver }) {
      if (!driver.capabilities.sendReceive) return assertNoSendReceive(driver);
      await sourceVolume(driver);
      await writePattern(driver, 'v', 5 * MiB, MiB, 3);
      await driver.snapshot('v', 's3');
      await driver.receive('r', driver.send('v', 's1'));
      const state = await snapshotState(driver, 'r');
      const rDigest = await digest(driver, 'r');
      const unchanged = async (what: string) => {
        assert.deepEqual(await snapshotState(driver, 'r'), state, `${what}: snapshots unchanged`);
        assert.equal(await digest(driver, 'r'), rDigest, `${what}: data unchanged`);
      };
      await rejectsWith(() => driver.receive('r', driver.send('v', 's3', { base: 's2' })), 'STORE_STREAM_INVALID', 'base s2 missing on r');
      await unchanged('missing base');

      // Same snapshot name, different history: the guid does not match.
      await driver.create('w', { size: 16 * MiB });
      await writePattern(driver, 'w', 0, MiB, 9);
      await driver.snapshot('w', 's1');
      await driver.receive('q', driver.send('w', 's1'));
      await rejectsWith(() => driver.receive('q', driver.send('v', 's2', { base: 's1' })), 'STORE_STREAM_INVALID', 'base with the same name but another guid');
      assert.deepEqual((await driver.listSnapshots('q')).map((s) => s.name), ['s1']);

      await rejectsWith(() => driver.receive('nope', driver.send('v', 's2', { base: 's1' })), 'STORE_NOT_FOUND', 'incremental into a missing volume');
      assert.equal(await driver.exists('nope'), false);

      // r written to after its latest snapshot: refused unless force, which discards those writes.
      await writePattern(driver, 'r', 7 * MiB, MiB, 8);
      const changed = await digest(driver, 'r');
      await rejectsWith(() => driver.receive('r', driver.send('v', 's2', { base: 's1' })), 'STORE_STREAM_INVALID', 'incremental onto a volume changed since its snapshot');
      assert.equal(await digest(driver, 'r'), changed, 'refused receive kept the local writes');
      await driver.receive('r', driver.send('v', 's2', { base: 's1' }), { force: true });
      assert.equal(await digest(driver, 'r'), await digest(driver, 'v', 's2'));
    },
  },
  {
    name: 'receive: corrupt and truncated streams are rejected whole with STORE_STREAM_INVALID; nothing is created or touched',
    async run({ driver }) {
      if (!driver.capabilities.sendReceive) return assertNoSendReceive(driver);
      await sourceVolume(driver);
      const full = await collect(driver.send('v', 's1'));
      const bad: Array<[string, Buffer]> = [
        ['empty', Buffer.alloc(0)],
        ['random bytes', randomBytes(256 * KiB)],
        ['flipped header byte', flipByte(full, 8)],
        ['flipped data byte', flipByte(full, Math.floor(full.length / 2))],
        ['flipped last byte', flipByte(full, full.length - 1)],
        ['first 100 bytes', full.subarray(0, 100)],
        ['first half', full.subarray(0, Math.floor(full.length / 2))],
        ['all but the last byte', full.subarray(0, full.length - 1)],
        ['trailing garbage', Buffer.concat([full, randomBytes(4096)])],
      ];
      for (const [what, bytes] of bad) {
        await rejectsWith(() => driver.receive('r', replay(bytes)), 'STORE_STREAM_INVALID', `full stream: ${what}`);
        assert.equal(await driver.exists('r'), false, `${what}: no volume left behind`);
      }
      assert.deepEqual((await driver.list()).map((x) => x.name), ['v']);

      await driver.receive('r', replay(full));
      const inc = await collect(driver.send('v', 's2', { base: 's1' }));
      const state = await snapshotState(driver, 'r');
      const rDigest = await digest(driver, 'r');
      for (const [what, bytes] of [
        ['flipped data byte', flipByte(inc, Math.floor(inc.length / 2))],
        ['flipped last byte', flipByte(inc, inc.length - 1)],
        ['first half', inc.subarray(0, Math.floor(inc.length / 2))],
        ['a full stream where an incremental belongs', full],
      ] as Array<[string, Buffer]>) {
        await rejectsWith(() => driver.receive('r', replay(bytes)), what.startsWith('a full') ? 'STORE_EXISTS' : 'STORE_STREAM_INVALID', `incremental: ${what}`);
        assert.deepEqual(await snapshotState(driver, 'r'), state, `${what}: r's snapshots untouched`);
        assert.equal(await digest(driver, 'r'), rDigest, `${what}: r's data untouched`);
      }
      if (driver.capabilities.resumableReceive) assert.equal(await driver.receiveResumeToken('r'), undefined, 'a non-resumable failure leaves no partial state');
      // The good stream still applies after all that.
      await driver.receive('r', replay(inc));
      assert.equal(await digest(driver, 'r'), await digest(driver, 'v', 's2'));
    },
  },
  {
    name: 'receive: an interrupted resumable receive resumes from its token, or is aborted',
    async run({ driver }) {
      if (!driver.capabilities.resumableReceive) {
        await driver.create('v', { size: MiB });
        if (driver.capabilities.snapshots) await driver.snapshot('v', 's1');
        await rejectsWith(() => driver.receive('r', replay(Buffer.alloc(4096)), { resumable: true }), 'STORE_UNSUPPORTED', 'resumable receive');
        await rejectsWith(() => driver.receiveResumeToken('r'), 'STORE_UNSUPPORTED', 'receiveResumeToken');
        await rejectsWith(() => driver.abortReceive('r'), 'STORE_UNSUPPORTED', 'abortReceive');
        await rejectsWith(() => collect(driver.send('v', 's1', { resumeToken: 'x' })), 'STORE_UNSUPPORTED', 'send --resume');
        assert.equal(await driver.exists('r'), false);
        return;
      }
      await sourceVolume(driver);
      const full = await collect(driver.send('v', 's1'));
      const cut = Math.floor(full.length * 0.6);
      const err = (await rejectsWith(() => driver.receive('r', replay(full.subarray(0, cut)), { resumable: true }), 'STORE_RECEIVE_INTERRUPTED', 'full stream cut at 60%')) as { data: { resumeToken?: unknown } };
      const token = err.data.resumeToken;
      assert.ok(typeof token === 'string' && token.length > 0, `details.resumeToken ${String(token)}`);
      assert.equal(await driver.receiveResumeToken('r'), token);
      const rest = await collect(driver.send('v', 's1', { resumeToken: token }));
      assert.ok(rest.length < full.length * 0.75, `the resumed stream (${rest.length} bytes) restarts near the cut, not from the start (${full.length})`);
      const got = await driver.receive('r', replay(rest), { resumable: true });
      assert.equal(got.guid, (await driver.listSnapshots('v'))[0]!.guid);
      assert.equal(await digest(driver, 'r'), await digest(driver, 'v', 's1'));
      assert.equal(await driver.receiveResumeToken('r'), undefined, 'no token once complete');

      // Incremental: interrupted, r stays at s1; resumed, r reaches s2.
      const inc = await collect(driver.send('v', 's2', { base: 's1' }));
      const incErr = (await rejectsWith(() => driver.receive('r', replay(inc.subarray(0, Math.floor(inc.length / 2))), { resumable: true }), 'STORE_RECEIVE_INTERRUPTED', 'incremental cut at 50%')) as { data: { resumeToken?: unknown } };
      assert.deepEqual((await driver.listSnapshots('r')).map((s) => s.name), ['s1']);
      assert.equal(await digest(driver, 'r'), await digest(driver, 'v', 's1'), 'an interrupted incremental leaves the volume at its base');
      await driver.receive('r', driver.send('v', 's2', { resumeToken: incErr.data.resumeToken as string }), { resumable: true });
      assert.equal(await digest(driver, 'r'), await digest(driver, 'v', 's2'));

      // Abort: the partial state goes and the name is free for a fresh receive.
      await rejectsWith(() => driver.receive('r2', replay(full.subarray(0, cut)), { resumable: true }), 'STORE_RECEIVE_INTERRUPTED', 'second interrupted receive');
      await driver.abortReceive('r2');
      assert.equal(await driver.receiveResumeToken('r2'), undefined);
      assert.equal(await driver.exists('r2'), false);
      await rejectsWith(() => driver.abortReceive('r2'), 'STORE_NOT_FOUND', 'abort with nothing pending');
      await driver.receive('r2', replay(full));
      assert.equal(await digest(driver, 'r2'), await digest(driver, 'v', 's1'));
    },
  },
];
