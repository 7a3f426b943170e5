import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { buildFatImage, fatGeometry, shortName, type FatFile } from './fat-image.js';
import { isDisklessError } from '../errors/index.js';

// The images are read back with Debian's dosfstools (fsck.fat -n) and mtools (mdir, mtype),
// independent FAT implementations (scripts/install-deps.sh installs both).
const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };

function withImage<T>(image: Buffer, f: (path: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'du-fat-'));
  try {
    const path = join(dir, 'fat.img');
    writeFileSync(path, image);
    return f(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function fsck(path: string): string {
  const r = spawnSync('fsck.fat', ['-n', '-v', path], { encoding: 'utf8' });
  assert.equal(r.status, 0, `fsck.fat -n: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

function mtype(path: string, file: string): Buffer {
  return execFileSync('mtype', ['-i', path, `::${file}`], { env, maxBuffer: 64 * 1024 * 1024 });
}

/** Names in a directory, from `mdir -b` (one full path per line). */
function mdirNames(path: string, dir: string): string[] {
  return execFileSync('mdir', ['-b', '-i', path, `::${dir}`], { env, encoding: 'utf8' })
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/^::/, ''))
    .sort();
}

const code = (c: 'STORE_INVALID_IMAGE') => (e: unknown) => isDisklessError(e, c);

test('FAT type follows the cluster count only: FAT12 below 4085 clusters, FAT16 up to 65524', () => {
  const small = fatGeometry(1024 * 1024);
  assert.equal(small.fatType, 12);
  assert.ok(small.clusterCount <= 4084);
  const esp = fatGeometry(8 * 1024 * 1024);
  assert.equal(esp.fatType, 16);
  assert.equal(esp.sectorsPerCluster, 1);
  assert.ok(esp.clusterCount > 4084 && esp.clusterCount <= 65524);
  // 64 MiB needs 2-sector clusters to stay within FAT16.
  const big = fatGeometry(64 * 1024 * 1024);
  assert.equal(big.fatType, 16);
  assert.equal(big.sectorsPerCluster, 2);
  for (const g of [small, esp, big]) {
    const perFat = g.fatType === 12 ? Math.ceil(((g.clusterCount + 2) * 3) / 2) : (g.clusterCount + 2) * 2;
    assert.ok(g.sectorsPerFat * 512 >= perFat, 'every cluster has a FAT entry');
    assert.ok((g.sectorsPerFat - 1) * 512 < perFat, 'and the FAT is no larger than needed');
  }
  assert.throws(() => fatGeometry(4 * 1024 * 1024 * 1024), code('STORE_INVALID_IMAGE'));
  assert.throws(() => fatGeometry(1000), code('STORE_INVALID_IMAGE'));
  assert.throws(() => fatGeometry(32 * 1024), code('STORE_INVALID_IMAGE'));
});

test('FAT12 and FAT16 images: fsck.fat finds no error, mtools lists and reads back every file', () => {
  const big = Buffer.alloc(300_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 8)) & 0xff;
  const files: FatFile[] = [
    { path: '/EFI/BOOT/BOOTX64.EFI', data: Buffer.from('MZ pretend') },
    { path: '/EFI/BOOT/grub.cfg', data: Buffer.from('set timeout=0\n') },
    { path: '/startup.nsh', data: Buffer.from('fs0:\\EFI\\BOOT\\BOOTX64.EFI\r\n') },
    { path: '/DATA/BIG.BIN', data: big },
    { path: '/DATA/EMPTY', data: Buffer.alloc(0) },
  ];
  for (const [size, type] of [
    [1024 * 1024, 'FAT12'],
    [8 * 1024 * 1024, 'FAT16'],
    [40 * 1024 * 1024, 'FAT16'],
  ] as const) {
    const image = buildFatImage({ sizeBytes: size, files, directories: ['/EMPTYDIR'], label: 'TEST VOL', volumeId: 0x12345678 });
    assert.equal(image.length, size);
    assert.equal(image.subarray(54, 62).toString('latin1'), `${type}   `);
    withImage(image, (path) => {
      fsck(path);
      assert.deepEqual(mdirNames(path, '/'), ['/DATA/', '/EFI/', '/EMPTYDIR/', '/STARTUP.NSH']);
      assert.deepEqual(mdirNames(path, '/EFI/BOOT'), ['/EFI/BOOT/BOOTX64.EFI', '/EFI/BOOT/GRUB.CFG']);
      assert.deepEqual(mdirNames(path, '/EMPTYDIR'), []);
      for (const f of files) assert.deepEqual(mtype(path, f.path), Buffer.from(f.data), `${type} ${f.path}`);
      const info = execFileSync('minfo', ['-i', path, '::'], { env, encoding: 'utf8' });
      assert.match(info, /disk label="TEST VOL   "/);
      assert.match(info, new RegExp(`disk type="${type}   "`));
      assert.match(info, /serial number: 12345678/i);
    });
  }
});

test('deterministic: the same input gives the same bytes (no clock); a date is stamped as given', () => {
  const opts = { sizeBytes: 1024 * 1024, files: [{ path: '/A.TXT', data: Buffer.from('a') }] };
  assert.deepEqual(buildFatImage(opts), buildFatImage(opts));
  const dated = buildFatImage({ ...opts, modified: new Date(2026, 10, 20, 23, 30, 10) });
  withImage(dated, (path) => {
    assert.match(execFileSync('mdir', ['-i', path, '::/'], { env, encoding: 'utf8' }), /A +TXT +1 2026-11-20 +23:30/);
  });
});

test('random trees of files read back byte for byte (fsck.fat + mtype)', () => {
  const name = fc.stringMatching(/^[A-Z0-9_]{1,8}(\.[A-Z0-9]{1,3})?$/);
  const tree = fc.uniqueArray(
    fc.record({ dirs: fc.array(fc.stringMatching(/^D[A-Z0-9]{0,7}$/), { maxLength: 3 }), name, data: fc.uint8Array({ maxLength: 5000 }) }),
    { minLength: 1, maxLength: 12, selector: (f) => [...f.dirs, f.name].join('/') },
  );
  fc.assert(
    fc.property(tree, (entries) => {
      // File names start with a letter other than D, directories with D: no file/dir clash.
      const files = entries.map((e) => ({ path: `/${[...e.dirs, `F${e.name.slice(1)}`].join('/')}`, data: e.data }));
      const unique = [...new Map(files.map((f) => [f.path, f])).values()];
      const image = buildFatImage({ sizeBytes: 1024 * 1024, files: unique });
      withImage(image, (path) => {
        fsck(path);
        for (const f of unique) assert.deepEqual(mtype(path, f.path), Buffer.from(f.data), f.path);
      });
    }),
    { numRuns: 12, seed: 20261120 },
  );
});

test('bad input is refused with STORE_INVALID_IMAGE naming the field', () => {
  const ok = { sizeBytes: 1024 * 1024 };
  const cases: Array<[string, () => unknown]> = [
    ['files', () => buildFatImage({ ...ok, files: [{ path: '/LONGFILENAME.TXT', data: Buffer.alloc(1) }] })],
    ['files', () => buildFatImage({ ...ok, files: [{ path: 'relative.txt', data: Buffer.alloc(1) }] })],
    ['files', () => buildFatImage({ ...ok, files: [{ path: '/A.TOOLONG', data: Buffer.alloc(1) }] })],
    ['files', () => buildFatImage({ ...ok, files: [{ path: '/BAD*.TXT', data: Buffer.alloc(1) }] })],
    ['files', () => buildFatImage({ ...ok, files: [{ path: '/', data: Buffer.alloc(1) }] })],
    ['files', () => buildFatImage({ ...ok, files: [{ path: '/A', data: Buffer.alloc(1) }, { path: '/a', data: Buffer.alloc(1) }] })],
    ['directories', () => buildFatImage({ ...ok, files: [{ path: '/A', data: Buffer.alloc(1) }, { path: '/A/B', data: Buffer.alloc(1) }] })],
    ['files', () => buildFatImage({ ...ok, files: [{ path: '/HUGE.BIN', data: Buffer.alloc(2 * 1024 * 1024) }] })],
    ['label', () => buildFatImage({ ...ok, files: [], label: 'A LABEL TOO LONG' })],
    ['sizeBytes', () => buildFatImage({ sizeBytes: 100_000, files: [] })],
  ];
  for (const [field, f] of cases) {
    assert.throws(f, (e: unknown) => isDisklessError(e, 'STORE_INVALID_IMAGE') && e.data.field === field, field);
  }
  assert.equal(shortName('bootx64.efi', 'path'), 'BOOTX64 EFI');
  assert.equal(shortName('EFI', 'path'), 'EFI        ');
});
