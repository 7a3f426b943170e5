/**
 * Replication between two real zfs-fuse pools (the "push one golden image across the fleet"
 * flow): full send, changes, incremental send -i, receive on the second pool, bytes compared;
 * truncated, corrupted and padded streams are refused and leave the target as it was.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, beforeEach, test } from 'node:test';
import { isDisklessError } from '../../errors/index.js';
import { createTestPool, ensureZfsFuse, ZFS_TEST_COMMAND_TIMEOUT_MS, type TestPool } from '../../../test/support/zfs-fuse.js';
import { fillPattern } from '../../../test/support/block-pattern.js';
import type { StorageDriver } from '../storage-driver.js';
import { ZfsStorageDriver } from './zfs-storage-driver.js';

const MiB = 1024 * 1024;
let source: TestPool;
let target: TestPool;
let a: ZfsStorageDriver;
let b: ZfsStorageDriver;

before(async () => {
  source = await createTestPool({ prefix: 'dl4a-src', size: 256 * MiB });
  target = await createTestPool({ prefix: 'dl4a-dst', size: 256 * MiB });
  a = await ZfsStorageDriver.open({ dataset: `${source.name}/golden`, commandTimeoutMs: ZFS_TEST_COMMAND_TIMEOUT_MS });
  b = await ZfsStorageDriver.open({ dataset: `${target.name}/fleet/images`, commandTimeoutMs: ZFS_TEST_COMMAND_TIMEOUT_MS });
});

// A daemon that stopped answering fails each later test at once with one message (test/support/zfs-fuse.ts).
beforeEach(() => ensureZfsFuse());

after(async () => {
  await source?.destroy();
  await target?.destroy();
});

async function write(driver: StorageDriver, volume: string, offset: number, length: number, seed: number): Promise<void> {
  const dev = await driver.open(volume);
  try {
    await dev.write(offset, fillPattern(Buffer.alloc(length), offset, seed));
    await dev.flush();
  } finally {
    await dev.close();
  }
}

async function digest(driver: StorageDriver, volume: string, snapshot?: string): Promise<string> {
  const dev = await driver.open(volume, snapshot === undefined ? { readOnly: true } : { snapshot });
  try {
    return createHash('sha256').update(await dev.read(0, dev.size)).digest('hex');
  } finally {
    await dev.close();
  }
}

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts);
}

async function* replay(bytes: Buffer): AsyncIterable<Buffer> {
  for (let at = 0; at < bytes.length; at += 100_000) yield bytes.subarray(at, at + 100_000);
}

async function refused(p: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => isDisklessError(e, 'STORE_STREAM_INVALID'), what);
}

test('replication between two pools: full, then incremental; corrupt and truncated streams change nothing', async () => {
  await a.create('gold', { size: 32 * MiB });
  await write(a, 'gold', 0, 8 * MiB, 1);
  const s1 = await a.snapshot('gold', 's1');
  const full = await collect(a.send('gold', 's1'));
  assert.ok(full.length >= 8 * MiB && full.length < 8.5 * MiB, `full stream ${full.length} bytes for 8 MiB of data`);

  // A full stream cut short, with a flipped data byte, or with bytes after its END: nothing is created.
  await refused(b.receive('gold', replay(full.subarray(0, full.length >> 1))), 'truncated full stream');
  await refused(b.receive('gold', replay(flip(full, full.length >> 1))), 'corrupted full stream');
  await refused(b.receive('gold', replay(Buffer.concat([full, Buffer.from('trailing')]))), 'full stream with trailing bytes');
  assert.equal(await b.exists('gold'), false);

  const got = await b.receive('gold', replay(full));
  assert.equal(got.guid, s1.guid, 'the guid survives the trip');
  assert.deepEqual((await b.info('gold')).origin, { kind: 'receive' });
  assert.equal(await digest(b, 'gold'), await digest(a, 'gold', 's1'));

  // Change 1 MiB (half overwrite, half new) and send only that.
  await write(a, 'gold', 4 * MiB, MiB / 2, 2);
  await write(a, 'gold', 20 * MiB, MiB / 2, 2);
  await a.snapshot('gold', 's2');
  const inc = await collect(a.send('gold', 's2', { base: 's1' }));
  assert.ok(inc.length >= MiB && inc.length < 1.2 * MiB, `incremental stream ${inc.length} bytes for 1 MiB changed`);

  const before = { digest: await digest(b, 'gold'), snaps: (await b.listSnapshots('gold')).map((s) => `${s.name}:${s.guid}`) };
  for (const [what, bytes] of [
    ['truncated', inc.subarray(0, inc.length - 1000)],
    ['corrupted', flip(inc, inc.length >> 1)],
    ['END padding damaged', flip(inc, inc.length - 1)],
    ['trailing bytes', Buffer.concat([inc, Buffer.alloc(512)])],
  ] as Array<[string, Buffer]>) {
    await refused(b.receive('gold', replay(bytes)), `${what} incremental`);
    assert.equal(await digest(b, 'gold'), before.digest, `${what}: data untouched`);
    assert.deepEqual((await b.listSnapshots('gold')).map((s) => `${s.name}:${s.guid}`), before.snaps, `${what}: snapshots untouched`);
  }

  const s2 = await b.receive('gold', replay(inc));
  assert.equal(s2.name, 's2');
  assert.equal(await digest(b, 'gold'), await digest(a, 'gold', 's2'), 'the target reads as s2 (not stale FUSE pages)');
  assert.equal(await digest(b, 'gold', 's1'), await digest(a, 'gold', 's1'));
  const [r1, r2] = await b.listSnapshots('gold');
  const [l1, l2] = await a.listSnapshots('gold');
  assert.deepEqual([r1!.guid, r2!.guid], [l1!.guid, l2!.guid]);

  // A node boots from a clone of the replicated image; the next incremental needs the clone gone or promoted, not the data.
  await b.clone('gold', 's2', 'node1');
  await write(b, 'node1', 0, MiB, 3);
  assert.equal(await digest(b, 'gold', 's2'), await digest(a, 'gold', 's2'), 'writing the clone leaves the replicated snapshot intact');
});

function flip(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] = copy[at]! ^ 0x5a;
  return copy;
}
