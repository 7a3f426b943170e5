import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDisklessError } from '../errors/index.js';
import { indexModules, modinfoField, resolveModuleOrder } from './linux-initramfs.js';

/** A stand-in .ko: some ELF-ish bytes, then NUL-separated modinfo strings as the kernel lays them out. */
function ko(fields: Record<string, string[]>): Buffer {
  const strings = Object.entries(fields).flatMap(([k, vs]) => vs.map((v) => `${k}=${v}`));
  return Buffer.concat([Buffer.from('\x7fELF\x02\x01\x01'), Buffer.alloc(9), ...strings.map((s) => Buffer.from(`\0${s}`)), Buffer.from('\0')]);
}

test('modinfoField reads every value of a field and nothing from longer keys', () => {
  const file = ko({ license: ['GPL'], depends: ['scsi_mod,libiscsi'], softdepends: ['x'], alias: ['a', 'b'] });
  assert.deepEqual(modinfoField(file, 'depends'), ['scsi_mod,libiscsi']);
  assert.deepEqual(modinfoField(file, 'alias'), ['a', 'b']);
  assert.deepEqual(modinfoField(file, 'vermagic'), []);
  assert.deepEqual(modinfoField(ko({ depends: [''] }), 'depends'), ['']);
});

test('resolveModuleOrder puts dependencies first, once each, dashes and underscores alike', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dk-modules-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const kernel = join(dir, 'kernel', 'drivers');
  await mkdir(kernel, { recursive: true });
  const mods: Record<string, string> = {
    'iscsi_tcp': 'libiscsi,libiscsi_tcp,scsi_transport_iscsi',
    'libiscsi_tcp': 'libiscsi,scsi_transport_iscsi',
    'libiscsi': 'scsi_transport_iscsi,scsi_mod',
    'scsi_transport_iscsi': 'scsi_mod',
    'scsi_mod': 'scsi_common',
    'scsi_common': '',
    'crc-t10dif': 'crct10dif_common',
    'crct10dif_common': '',
  };
  for (const [name, depends] of Object.entries(mods)) await writeFile(join(kernel, `${name}.ko`), ko({ depends: [depends] }));
  const index = await indexModules(dir);
  assert.equal(index.size, 8);
  assert.ok(index.has('crc_t10dif'));
  const order = await resolveModuleOrder(['iscsi_tcp', 'crc-t10dif'], index);
  assert.deepEqual(order, ['scsi_common', 'scsi_mod', 'scsi_transport_iscsi', 'libiscsi', 'libiscsi_tcp', 'iscsi_tcp', 'crct10dif_common', 'crc_t10dif']);

  await writeFile(join(kernel, 'broken.ko'), ko({ depends: ['not_there'] }));
  const withBroken = await indexModules(dir);
  await assert.rejects(resolveModuleOrder(['broken'], withBroken), (err: unknown) => isDisklessError(err) && err.code === 'LAB_TOOL_MISSING' && /not_there \(needed by broken\)/.test(err.message));

  await writeFile(join(kernel, 'a.ko'), ko({ depends: ['b'] }));
  await writeFile(join(kernel, 'b.ko'), ko({ depends: ['a'] }));
  await assert.rejects(resolveModuleOrder(['a'], await indexModules(dir)), /cycle/);
});

test('indexModules refuses a directory without modules', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dk-modules-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await assert.rejects(indexModules(dir), (err: unknown) => isDisklessError(err) && err.code === 'LAB_TOOL_MISSING');
  await mkdir(join(dir, 'kernel'));
  await assert.rejects(indexModules(dir), /no uncompressed/);
});
