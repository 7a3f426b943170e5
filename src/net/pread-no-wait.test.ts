import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { NOT_CACHED, preadNoWait } from './pread-no-wait.js';

test('preadNoWait reads cached bytes into a sub-range, 0 at end of file, EBADF on a bad descriptor', () => {
  const pread = preadNoWait();
  assert.ok(pread, 'the native addon is built by make');
  const dir = mkdtempSync(join(tmpdir(), 'di-nowait-'));
  try {
    const file = join(dir, 'f');
    const data = randomBytes(3 * 4096);
    writeFileSync(file, data); // just written: in the page cache
    const fd = openSync(file, 'r');
    try {
      readSync(fd, Buffer.alloc(data.length), 0, data.length, 0);
      const target = Buffer.alloc(8192, 0xee);
      const n = pread(fd, target, 100, 100 + 4096, 4096);
      if (n === NOT_CACHED) assert.fail('a page just written and read is not cached');
      assert.equal(n, 4096);
      assert.deepEqual(target.subarray(100, 4196), data.subarray(4096, 8192));
      assert.equal(target[99], 0xee);
      assert.equal(target[4196], 0xee);
      assert.equal(pread(fd, target, 0, 4096, data.length), 0);
      assert.equal(pread(fd, target, 0, 4096, data.length - 10), 10);
      assert.throws(() => pread(fd, target, 0, 9000, 0), { code: 'ERR_INVALID_ARG_TYPE' });
    } finally {
      closeSync(fd);
    }
    assert.throws(() => pread(fd, Buffer.alloc(16), 0, 16, 0), { code: 'EBADF' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
