import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileBlockDevice } from './file-block-device.js';

test('page-aligned writes (written on the JS thread) and unaligned ones (thread pool) land where asked, vectored too', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'di-fbd-'));
  try {
    const file = join(dir, 'v.img');
    await writeFile(file, Buffer.alloc(1 << 20));
    const dev = new FileBlockDevice(await open(file, 'r+'), 1 << 20, 512, false, 'v');
    const a = Buffer.alloc(4096, 0xa1);
    const parts = [Buffer.alloc(1000, 0xb1), Buffer.alloc(7192, 0xb2)]; // 8 KiB in two uneven pieces
    await dev.write(8192, a);
    await dev.write(65536, parts);
    await dev.write(512, Buffer.alloc(1024, 0xc1)); // not page-aligned
    await dev.write(1 << 19, Buffer.alloc(1 << 19, 0xd1), { fua: true }); // 512 KiB to the end
    const expected = Buffer.alloc(1 << 20);
    a.copy(expected, 8192);
    Buffer.concat(parts).copy(expected, 65536);
    expected.fill(0xc1, 512, 1536);
    expected.fill(0xd1, 1 << 19);
    assert.ok((await readFile(file)).equals(expected), 'file content');
    assert.ok((await dev.read(0, 1 << 20)).equals(expected), 'read back through the device');
    await dev.close();
    await assert.rejects(dev.write(0, Buffer.alloc(4096)), { code: 'STORE_CLOSED' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
