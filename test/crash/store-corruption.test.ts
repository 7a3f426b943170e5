/**
 * Corruption injection and out-of-space through the iSCSI target, on embedded pools served
 * in-process. Bytes of one extent are flipped on disk where `debugLocate` says the block lives
 * (primary copy, then the mirror's), with the pool closed so no cache can hide it; then:
 *   - with a mirror, a READ through iSCSI returns the right data and the bad copy is rewritten
 *     (checked on disk); a bad mirror copy is found and healed by scrub;
 *   - with both copies bad, or no mirror, the READ ends in CHECK CONDITION MEDIUM ERROR
 *     03/11/00, never in wrong bytes, while the rest of the volume still reads;
 *   - a pool with a small capacity filled through iSCSI answers 07/27/07 (SPACE ALLOCATION
 *     FAILED) and everything acknowledged before still reads back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStorageDriver } from '../../src/store/embedded/embedded-storage-driver.js';
import { IscsiServer } from '../../src/services/iscsi/iscsi-server.js';
import { StaticTargetResolver } from '../../src/services/iscsi/static-target-resolver.js';
import { Metrics } from '../../src/observe/metrics.js';
import { silentLogger } from '../../src/observe/logger.js';
import type { BlockDevice } from '../../src/store/block-device.js';
import { firstPatternMismatch, pattern } from '../support/block-pattern.js';
import { IscsiTestClient } from '../support/iscsi-client.js';
import { BULK_LOGIN_KEYS, describeOutcome, read16, synchronizeCache, write16 } from '../support/scsi-io.js';

const BLOCK = 512;
const MiB = 1024 * 1024;
const IQN = 'iqn.2026-11.io.diskless:dl4d-corrupt';

interface Served {
  readonly driver: EmbeddedStorageDriver;
  readonly client: IscsiTestClient;
  close(): Promise<void>;
}

/** Opens the pool, serves `volume` on `port`, logs a client in. */
async function serve(pool: { pool: string; mirror?: string; capacity?: number }, volume: string, port: number): Promise<Served> {
  const driver = await EmbeddedStorageDriver.open(pool);
  let device: BlockDevice | undefined;
  let server: IscsiServer | undefined;
  try {
    device = await driver.open(volume);
    server = new IscsiServer({ address: '127.0.0.1', port, log: silentLogger(), metrics: new Metrics(), shutdownGraceMs: 0, targets: new StaticTargetResolver([{ name: IQN, device, readOnly: false }]) });
    await server.start();
    const client = await IscsiTestClient.connect(port);
    const r = await client.login({ target: IQN, initiatorName: 'iqn.2026-11.io.diskless:dl4d-corrupt-client', keys: BULK_LOGIN_KEYS });
    assert.equal(r.statusClass, 0, 'login');
    const [d, s] = [device, server];
    return {
      driver,
      client,
      async close() {
        client.close();
        await s.stop();
        await d.close();
        await driver.close();
      },
    };
  } catch (err) {
    await server?.stop();
    await device?.close();
    await driver.close();
    throw err;
  }
}

async function readAt(path: string, position: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(length);
    await fh.read(b, 0, length, position);
    return b;
  } finally {
    await fh.close();
  }
}

/** Flips 16 bytes in the middle of [position, position + length) of `path`, synced. */
async function flip(path: string, position: number, length: number): Promise<void> {
  const at = position + Math.floor(length / 2);
  const fh = await open(path, 'r+');
  try {
    const b = Buffer.alloc(16);
    await fh.read(b, 0, 16, at);
    for (let i = 0; i < 16; i++) b[i] = b[i]! ^ 0xa5;
    await fh.write(b, 0, 16, at);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/** Writes 1 MiB of seed-1 pattern at offset 0 of `v` through iSCSI, synced; returns where byte `probe` lives. */
async function seedVolume(pool: { pool: string; mirror?: string }, port: number, probe: number): Promise<Array<{ path: string; position: number; length: number }>> {
  const setup = await EmbeddedStorageDriver.open(pool);
  await setup.create('v', { size: 16 * MiB });
  await setup.close();
  const s = await serve(pool, 'v', port);
  try {
    for (let off = 0; off < MiB; off += 256 * 1024) {
      const w = await write16(s.client, off / BLOCK, pattern(off, 256 * 1024, 1), BLOCK);
      assert.ok(w.ok, describeOutcome(w));
    }
    assert.ok((await synchronizeCache(s.client)).ok);
    return await s.driver.debugLocate('v', probe);
  } finally {
    await s.close();
  }
}

/** Reads 1 MiB at 0 through iSCSI and expects the seed-1 pattern. */
async function expectIntact(client: IscsiTestClient, what: string): Promise<void> {
  const r = await read16(client, 0, MiB / BLOCK, BLOCK);
  assert.ok(r.ok, `${what}: READ ended ${describeOutcome(r)}`);
  assert.equal(firstPatternMismatch(r.data, 0, 1), -1, `${what}: wrong bytes`);
}

test('corruption: with a mirror, a flipped primary copy is read from the mirror and rewritten; a flipped mirror copy is healed by scrub', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dl4d-corrupt-'));
  const pool = { pool: join(dir, 'pool'), mirror: join(dir, 'mirror') };
  try {
    const probe = 300 * 1024;
    const where = await seedVolume(pool, 15120, probe);
    assert.equal(where.length, 2, `debugLocate gives primary and mirror: ${JSON.stringify(where)}`);
    const [primary, copy] = where as [typeof where[0], typeof where[0]];
    assert.notEqual(primary.path, copy.path);
    const good = await readAt(primary.path, primary.position, primary.length);
    assert.ok(good.equals(await readAt(copy.path, copy.position, copy.length)), 'both copies hold the same bytes');
    assert.equal(firstPatternMismatch(good, Math.floor(probe / primary.length) * primary.length, 1), -1, 'debugLocate points at the bytes of the probed block');

    await flip(primary.path, primary.position, primary.length);
    let s = await serve(pool, 'v', 15120);
    try {
      await expectIntact(s.client, 'bad primary');
      assert.ok((await synchronizeCache(s.client)).ok);
    } finally {
      await s.close();
    }
    assert.ok((await readAt(primary.path, primary.position, primary.length)).equals(good), 'the bad primary copy was rewritten from the mirror');

    await flip(copy.path, copy.position, copy.length);
    s = await serve(pool, 'v', 15120);
    try {
      await expectIntact(s.client, 'bad mirror copy (reads need not notice)');
      const report = await s.driver.scrub('v');
      assert.deepEqual({ errors: report.errors, repaired: report.repaired, unrecoverable: report.unrecoverable }, { errors: 1, repaired: 1, unrecoverable: 0 }, 'scrub finds and heals the bad mirror copy');
      const again = await s.driver.scrub();
      assert.deepEqual({ errors: again.errors, repaired: again.repaired, unrecoverable: again.unrecoverable }, { errors: 0, repaired: 0, unrecoverable: 0 }, 'a second scrub is clean');
    } finally {
      await s.close();
    }
    assert.ok((await readAt(copy.path, copy.position, copy.length)).equals(good), 'the bad mirror copy was rewritten by scrub');

    // Both copies bad: a medium error, never wrong data; the rest of the volume still reads.
    await flip(primary.path, primary.position, primary.length);
    await flip(copy.path, copy.position, copy.length);
    s = await serve(pool, 'v', 15120);
    try {
      const lba = Math.floor(probe / BLOCK);
      const r = await read16(s.client, lba, 1, BLOCK);
      assert.equal(describeOutcome(r), '03/11/00', 'both copies bad: MEDIUM ERROR, UNRECOVERED READ ERROR');
      const before = await read16(s.client, 0, 128, BLOCK);
      assert.ok(before.ok && firstPatternMismatch(before.data, 0, 1) === -1, 'other extents still read');
      const report = await s.driver.scrub('v');
      assert.ok(report.unrecoverable >= 1 && report.errors >= 2, `scrub reports the lost block: ${JSON.stringify(report)}`);
      assert.equal(describeOutcome(await read16(s.client, lba, 1, BLOCK)), '03/11/00', 'scrub did not paper over it');
    } finally {
      await s.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('corruption: without a mirror, a flipped extent reads as CHECK CONDITION 03/11/00, never as wrong bytes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dl4d-corrupt-'));
  const pool = { pool: join(dir, 'pool') };
  try {
    const probe = 700 * 1024;
    const where = await seedVolume(pool, 15121, probe);
    assert.equal(where.length, 1, `no mirror: one copy: ${JSON.stringify(where)}`);
    await flip(where[0]!.path, where[0]!.position, where[0]!.length);
    const s = await serve(pool, 'v', 15121);
    try {
      const r = await read16(s.client, 0, MiB / BLOCK, BLOCK);
      assert.equal(describeOutcome(r), '03/11/00', 'a READ across the bad block');
      assert.equal(describeOutcome(await read16(s.client, Math.floor(probe / BLOCK), 1, BLOCK)), '03/11/00', 'a READ of just the bad block');
      const ok = await read16(s.client, 0, 256, BLOCK);
      assert.ok(ok.ok && firstPatternMismatch(ok.data, 0, 1) === -1, 'the first 128 KiB still read');
      const report = await s.driver.scrub();
      assert.deepEqual({ errors: report.errors, repaired: report.repaired, unrecoverable: report.unrecoverable }, { errors: 1, repaired: 0, unrecoverable: 1 });
      // The flip hit the middle of a 4 KiB checksum block. Rewriting another sector of it must
      // not launder the bad bytes into a valid checksum; rewriting all of it makes it good.
      const where4k = where[0]!.length;
      const first = Math.floor(probe / where4k) * where4k;
      const flipped = (first + where4k / 2) / BLOCK;
      const partial = await write16(s.client, first / BLOCK, pattern(first, BLOCK, 1), BLOCK, true);
      assert.ok(partial.ok || describeOutcome(partial) === '03/11/00', `a write to another sector of the bad block: ${describeOutcome(partial)}`);
      assert.equal(describeOutcome(await read16(s.client, flipped, 1, BLOCK)), '03/11/00', 'the flipped sector still reads as a medium error');
      assert.ok((await write16(s.client, first / BLOCK, pattern(first, where4k, 1), BLOCK, true)).ok, 'rewriting the whole block');
      await expectIntact(s.client, 'after rewriting the whole bad block');
    } finally {
      await s.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('out of space: a pool with a 2 MiB capacity answers 07/27/07 through iSCSI and keeps everything written before', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dl4d-space-'));
  const pool = { pool: join(dir, 'pool'), capacity: 2 * MiB };
  try {
    const setup = await EmbeddedStorageDriver.open(pool);
    await setup.create('v', { size: 64 * MiB });
    await setup.close();
    const s = await serve(pool, 'v', 15130);
    try {
      const chunk = 128 * 1024;
      let written = 0;
      let refusal = '';
      for (let off = 0; off < 64 * MiB; off += chunk) {
        const r = await write16(s.client, off / BLOCK, pattern(off, chunk, 2), BLOCK);
        if (!r.ok) {
          refusal = describeOutcome(r);
          break;
        }
        written = off + chunk;
      }
      assert.equal(refusal, '07/27/07', `the write past the capacity (after ${written} bytes)`);
      assert.ok(written >= MiB && written <= 2 * MiB, `${written} bytes accepted in a 2 MiB pool`);
      const sync = await synchronizeCache(s.client);
      assert.ok(sync.ok || describeOutcome(sync) === '07/27/07', `SYNCHRONIZE CACHE: ${describeOutcome(sync)}`);
      const back = await read16(s.client, 0, written / BLOCK, BLOCK);
      assert.ok(back.ok, describeOutcome(back));
      assert.equal(firstPatternMismatch(back.data, 0, 2), -1, 'everything acknowledged before the full pool reads back');
      // The refused range holds zeros or the new bytes, block by block: never anything else.
      const tail = await read16(s.client, written / BLOCK, chunk / BLOCK, BLOCK);
      assert.ok(tail.ok, describeOutcome(tail));
      const want = pattern(written, chunk, 2);
      for (let b = 0; b < chunk; b += BLOCK) {
        const got = tail.data.subarray(b, b + BLOCK);
        assert.ok(got.every((x) => x === 0) || got.equals(want.subarray(b, b + BLOCK)), `block ${b / BLOCK} of the refused write`);
      }
      // Overwriting data already stored still works or says out of space, but never corrupts it.
      const over = await write16(s.client, 0, pattern(0, chunk, 3), BLOCK, true);
      const first = await read16(s.client, 0, chunk / BLOCK, BLOCK);
      assert.ok(first.ok);
      assert.equal(firstPatternMismatch(first.data, 0, over.ok ? 3 : 2), -1, `overwrite ${describeOutcome(over)}`);
    } finally {
      await s.close();
    }
    const driver = await EmbeddedStorageDriver.open(pool);
    try {
      const report = await driver.scrub();
      assert.deepEqual({ errors: report.errors, unrecoverable: report.unrecoverable }, { errors: 0, unrecoverable: 0 }, 'a full pool scrubs clean');
    } finally {
      await driver.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
