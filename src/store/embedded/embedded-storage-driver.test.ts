import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync, closeSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStorageDriver } from './embedded-storage-driver.js';

function tmp(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'emb-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function flip(path: string, position: number): void {
  const fd = openSync(path, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, position);
  b[0] = b[0]! ^ 0xff;
  writeSync(fd, b, 0, 1, position);
  closeSync(fd);
}

function bytesAt(path: string, position: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  const b = Buffer.alloc(length);
  readSync(fd, b, 0, length, position);
  closeSync(fd);
  return b;
}

const pattern = (n: number, seed: number): Buffer => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  return b;
};

test('a flipped byte without a mirror fails the read with STORE_CORRUPT, never wrong data; scrub counts it unrecoverable', async (t) => {
  const dir = tmp(t);
  const d = await EmbeddedStorageDriver.open({ pool: join(dir, 'p') });
  t.after(() => d.close());
  await d.create('v', { size: 1 << 20 });
  const dev = await d.open('v');
  await dev.write(0, pattern(256 * 1024, 1));
  await dev.flush();
  const [where] = await d.debugLocate('v', 70000);
  flip(where!.path, where!.position + 100);
  await assert.rejects(dev.read(65536, 8192), (err: { code?: string; data?: Record<string, unknown> }) => err.code === 'STORE_CORRUPT' && err.data?.['offset'] === 69632);
  // Blocks around it still read fine: the failure is per 4 KiB block.
  assert.ok((await dev.read(0, 65536)).equals(pattern(256 * 1024, 1).subarray(0, 65536)));
  const report = await d.scrub('v');
  assert.equal(report.errors, 1);
  assert.equal(report.unrecoverable, 1);
  assert.equal(report.repaired, 0);
  // A partial write into the damaged extent does not launder the bad block.
  await dev.write(65536, Buffer.alloc(512, 7));
  await assert.rejects(dev.read(69632, 4096), { code: 'STORE_CORRUPT' });
  await dev.close();
});

test('with a mirror a bad copy is read from the other and rewritten, on read and by scrub, on either side', async (t) => {
  const dir = tmp(t);
  const d = await EmbeddedStorageDriver.open({ pool: join(dir, 'p'), mirror: join(dir, 'm') });
  t.after(() => d.close());
  await d.create('v', { size: 1 << 20 });
  const dev = await d.open('v');
  const data = pattern(512 * 1024, 2);
  await dev.write(0, data);
  await dev.flush();
  const [primary, mirror] = await d.debugLocate('v', 8192);
  const good = bytesAt(primary!.path, primary!.position, 4096);
  flip(primary!.path, primary!.position + 5);
  assert.ok((await dev.read(8192, 4096)).equals(data.subarray(8192, 12288)), 'read returns the mirror copy');
  assert.ok(bytesAt(primary!.path, primary!.position, 4096).equals(good), 'the primary copy was rewritten');
  flip(mirror!.path, mirror!.position + 9);
  const [p2] = await d.debugLocate('v', 300000);
  flip(p2!.path, p2!.position);
  const report = await d.scrub();
  assert.deepEqual({ errors: report.errors, repaired: report.repaired, unrecoverable: report.unrecoverable }, { errors: 2, repaired: 2, unrecoverable: 0 });
  assert.ok(bytesAt(mirror!.path, mirror!.position, 4096).equals(good));
  assert.equal((await d.scrub()).errors, 0);
  // Both copies bad: no good copy, a medium error.
  flip(primary!.path, primary!.position + 1);
  flip(mirror!.path, mirror!.position + 1);
  await assert.rejects(dev.read(8192, 512), { code: 'STORE_CORRUPT' });
  await dev.close();
});

test('a full pool answers STORE_NO_SPACE without touching written data, and destroying a volume gives the space back', async (t) => {
  const dir = tmp(t);
  const d = await EmbeddedStorageDriver.open({ pool: join(dir, 'p'), capacity: 1 << 20, extentSize: 65536 });
  t.after(() => d.close());
  await d.create('a', { size: 4 << 20 });
  await d.create('b', { size: 1 << 20 });
  const a = await d.open('a');
  const first = pattern(512 * 1024, 3);
  await a.write(0, first);
  await a.flush();
  await assert.rejects(a.write(1 << 20, pattern(1 << 20, 4)), { code: 'STORE_NO_SPACE' });
  await a.flush();
  assert.ok((await a.read(0, 512 * 1024)).equals(first));
  const b = await d.open('b');
  await assert.rejects(b.write(0, pattern(1 << 20, 5)), { code: 'STORE_NO_SPACE' });
  await b.close();
  await d.destroy('b');
  await a.close();
  await d.destroy('a');
  await d.create('c', { size: 1 << 20 });
  const c = await d.open('c');
  await c.write(0, pattern(1 << 20, 6)); // the whole capacity again
  await c.flush();
  await c.close();
  assert.equal((await d.scrub()).errors, 0);
});

test('one process owns a pool: a second open is STORE_BUSY until the first closes', async (t) => {
  const dir = tmp(t);
  const d = await EmbeddedStorageDriver.open({ pool: join(dir, 'p') });
  await assert.rejects(EmbeddedStorageDriver.open({ pool: join(dir, 'p') }), { code: 'STORE_BUSY' });
  await d.close();
  const again = await EmbeddedStorageDriver.open({ pool: join(dir, 'p') });
  await again.close();
  await assert.rejects(EmbeddedStorageDriver.open({ pool: join(dir, 'p'), extentSize: 4096 }), { code: 'STORE_INVALID_SIZE' });
  await assert.rejects(EmbeddedStorageDriver.open({ pool: join(dir, 'q'), extentSize: 3000 }), { code: 'STORE_INVALID_SIZE' });
  await assert.rejects(EmbeddedStorageDriver.open({ pool: join(dir, 'p'), mirror: join(dir, 'm') }), { code: 'STORE_BAD_METADATA' });
});

test('import keeps zero extents unallocated and a crash-free reopen finds everything', async (t) => {
  const dir = tmp(t);
  const img = join(dir, 'disk.img');
  const raw = Buffer.alloc(3 << 20);
  pattern(100000, 9).copy(raw, 1 << 20);
  writeFileSync(img, raw);
  let d = await EmbeddedStorageDriver.open({ pool: join(dir, 'p') });
  const info = await d.create('img', { from: img });
  assert.equal(info.size, 3 << 20);
  assert.equal(info.referenced, 2 * 65536, 'only the two extents with data are stored');
  await d.close();
  d = await EmbeddedStorageDriver.open({ pool: join(dir, 'p') });
  t.after(() => d.close());
  const dev = await d.open('img');
  assert.ok((await dev.read(0, 3 << 20)).equals(raw));
  const runs = await dev.allocationStatus(0, 3 << 20, 10);
  assert.deepEqual(runs, [
    { offset: 0, length: 1 << 20, mapped: false },
    { offset: 1 << 20, length: 131072, mapped: true },
    { offset: (1 << 20) + 131072, length: (2 << 20) - 131072, mapped: false },
  ]);
  await dev.close();
  assert.ok(statSync(join(dir, 'p', 'extents.dat')).size <= 2 * 65536);
});

test('streams: a corrupt or truncated stream leaves the target untouched; resumable receives continue from their token', async (t) => {
  const dir = tmp(t);
  const src = await EmbeddedStorageDriver.open({ pool: join(dir, 'src') });
  const dst = await EmbeddedStorageDriver.open({ pool: join(dir, 'dst') });
  t.after(async () => {
    await src.close();
    await dst.close();
  });
  await src.create('g', { size: 4 << 20 });
  const g = await src.open('g');
  await g.write(0, pattern(3 << 20, 11));
  await src.snapshot('g', 'v1');
  await g.write(1 << 20, pattern(8192, 12));
  await src.snapshot('g', 'v2');
  await g.close();
  const collect = async (it: AsyncIterable<Buffer>): Promise<Buffer> => {
    const parts: Buffer[] = [];
    for await (const b of it) parts.push(Buffer.from(b));
    return Buffer.concat(parts);
  };
  const full = await collect(src.send('g', 'v1'));
  const inc = await collect(src.send('g', 'v2', { base: 'v1' }));
  assert.ok(inc.length < 8192 + 1024, `incremental stream is ${inc.length} bytes for 8 KiB changed`);
  const once = (b: Buffer): AsyncIterable<Buffer> => (async function* () {
    for (let i = 0; i < b.length; i += 100_000) yield b.subarray(i, i + 100_000);
  })();

  const bad = Buffer.from(full);
  bad[bad.length >> 1]! ^= 1;
  await assert.rejects(dst.receive('r', once(bad)), { code: 'STORE_STREAM_INVALID' });
  await assert.rejects(dst.receive('r', once(full.subarray(0, full.length - 10))), { code: 'STORE_STREAM_INVALID' });
  assert.deepEqual(await dst.list(), []);
  await dst.receive('r', once(full));
  const badInc = Buffer.from(inc);
  badInc[badInc.length - 40]! ^= 1;
  await assert.rejects(dst.receive('r', once(badInc)), { code: 'STORE_STREAM_INVALID' });
  assert.deepEqual((await dst.listSnapshots('r')).map((s) => s.name), ['v1']);
  await dst.receive('r', once(inc));
  const a = await src.open('g', { snapshot: 'v2' });
  const b = await dst.open('r', { snapshot: 'v2' });
  assert.ok((await a.read(0, 4 << 20)).equals(await b.read(0, 4 << 20)));
  await a.close();
  await b.close();
  assert.equal((await dst.listSnapshots('r'))[1]!.guid, (await src.listSnapshots('g'))[1]!.guid);

  // Resumable: cut the full stream in the middle, resume with the token from the receiver.
  const cut = full.subarray(0, Math.floor(full.length * 0.6));
  const err = await dst.receive('s', once(cut), { resumable: true }).then(
    () => assert.fail('a truncated stream was accepted'),
    (e: { code?: string; data?: Record<string, unknown> }) => e,
  );
  assert.equal(err.code, 'STORE_RECEIVE_INTERRUPTED');
  const token = await dst.receiveResumeToken('s');
  assert.equal(token, err.data?.['resumeToken']);
  assert.equal(await dst.exists('s'), false, 'a partial receive is not a volume yet');
  await dst.close();
  const dst2 = await EmbeddedStorageDriver.open({ pool: join(dir, 'dst2') });
  await dst2.close();
  const reopened = await EmbeddedStorageDriver.open({ pool: join(dir, 'dst') }); // survives a reopen
  const rest = await collect(src.send('g', 'v1', { resumeToken: (await reopened.receiveResumeToken('s'))! }));
  assert.ok(rest.length < full.length, 'the resumed stream skips what arrived');
  await reopened.receive('s', once(rest));
  const s = await reopened.open('s', { snapshot: 'v1' });
  assert.ok((await s.read(0, 3 << 20)).equals(pattern(3 << 20, 11)));
  await s.close();
  assert.equal(await reopened.receiveResumeToken('s'), undefined);
  await reopened.close();
  Object.assign(dst, { close: () => Promise.resolve() });
});

test('a block rewritten after each commit alternates between two slots: a move takes back the slot the extent left before', async (t) => {
  const dir = tmp(t);
  const d = await EmbeddedStorageDriver.open({ pool: join(dir, 'p') });
  t.after(() => d.close());
  await d.create('golden', { size: 1 << 20 });
  const g = await d.open('golden');
  await g.write(0, pattern(1 << 20, 1));
  await g.close();
  await d.snapshot('golden', 'v1');
  await d.clone('golden', 'v1', 'c');
  const dev = await d.open('c');
  // Two extents move in each group, X then Y: their old slots are freed in that order, so
  // most-recently-freed-first alone would swap them.
  const X = 8192;
  const Y = 524288;
  const where: Record<number, number[]> = { [X]: [], [Y]: [] };
  for (let i = 0; i < 5; i++) {
    for (const at of [X, Y]) {
      await dev.write(at, pattern(4096, 10 + i)); // the synchronous path (aligned)
      await dev.write(at + 12288 + 512, pattern(512, 20 + i)); // the other path (unaligned), same extent
    }
    await dev.flush();
    for (const at of [X, Y]) {
      const [loc] = await d.debugLocate('c', at);
      where[at]!.push(loc!.position);
      assert.ok((await dev.read(at, 4096)).equals(pattern(4096, 10 + i)));
      assert.ok((await dev.read(at + 12288 + 512, 512)).equals(pattern(512, 20 + i)));
      assert.ok((await dev.read(at - 8192, 8192)).equals(pattern(1 << 20, 1).subarray(at - 8192, at)), 'inherited blocks show through');
    }
  }
  for (const at of [X, Y]) {
    const w = where[at]!;
    assert.notEqual(w[1], w[0]);
    assert.deepEqual(w.slice(2), [w[0], w[1], w[0]], `extent at ${at}: slots ${w.join(', ')}`);
  }
  await dev.close();
  assert.equal((await d.scrub('c')).errors, 0);
});

test('a read over extents whose slots are adjacent (one read of the data file) still checks every block of every extent', async (t) => {
  const dir = tmp(t);
  for (const mirrored of [false, true]) {
    const d = await EmbeddedStorageDriver.open({ pool: join(dir, `p${mirrored}`), mirror: mirrored ? join(dir, `m${mirrored}`) : undefined, extentSize: 65536 });
    await d.create('v', { size: 1 << 20 });
    const dev = await d.open('v');
    const data = pattern(512 * 1024, 3);
    await dev.write(0, data);
    await dev.flush();
    const at = await Promise.all([0, 1, 2, 3].map(async (i) => (await d.debugLocate('v', i * 65536))[0]!.position));
    assert.deepEqual(at, [at[0]!, at[0]! + 65536, at[0]! + 131072, at[0]! + 196608], 'slots one after another');
    for (const [off, len, bad] of [
      [0, 262144, 200000],
      [512, 262144 - 1024, 262144 - 600], // unaligned at both ends, the bad block at the last edge
      [65536 - 4096, 8192, 65536], // across one extent boundary
    ] as const) {
      const [where] = await d.debugLocate('v', bad);
      flip(where!.path, where!.position);
      const read = dev.read(off, len);
      if (mirrored) assert.ok((await read).equals(data.subarray(off, off + len)), `${len} at ${off}: healed from the mirror`);
      else {
        await assert.rejects(read, (err: { code?: string; data?: Record<string, unknown> }) => err.code === 'STORE_CORRUPT' && err.data?.['offset'] === Math.floor(bad / 4096) * 4096, `${len} at ${off}`);
        flip(where!.path, where!.position); // put it back
      }
      assert.ok((await dev.read(off, len)).equals(data.subarray(off, off + len)));
    }
    await dev.close();
    await d.close();
  }
});
