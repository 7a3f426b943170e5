import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, utimes, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { provisionBootFiles } from './provision-boot-files.js';
import { validateConfig } from '../config/load-config.js';
import { isDisklessError } from '../errors/index.js';

async function fixture() {
  const dir = await mkdtemp(join(tmpdir(), 'dl-prov-'));
  const ipxeDir = join(dir, 'ipxe');
  await mkdir(ipxeDir);
  for (const f of ['undionly.kpxe', 'ipxe.efi', 'snponly.efi']) await writeFile(join(ipxeDir, f), `binary ${f}`);
  const bootFiles = validateConfig({ bootFiles: { ipxeDir } }).bootFiles;
  return { dir, ipxeDir, bootFiles, root: join(dir, 'tftp') };
}

test('copies the iPXE binaries into a new TFTP root, then leaves up-to-date copies alone', async (t) => {
  const f = await fixture();
  t.after(() => rm(f.dir, { recursive: true, force: true }));
  assert.deepEqual((await provisionBootFiles(f.bootFiles, f.root)).sort(), ['ipxe.efi', 'snponly.efi', 'undionly.kpxe']);
  assert.equal(await readFile(join(f.root, 'undionly.kpxe'), 'utf8'), 'binary undionly.kpxe');
  assert.deepEqual(await provisionBootFiles(f.bootFiles, f.root), []);
  // a newer package version replaces the copy
  await writeFile(join(f.ipxeDir, 'ipxe.efi'), 'binary ipxe.efi v2');
  const future = new Date(Date.now() + 60_000);
  await utimes(join(f.ipxeDir, 'ipxe.efi'), future, future);
  assert.deepEqual(await provisionBootFiles(f.bootFiles, f.root), ['ipxe.efi']);
  assert.equal(await readFile(join(f.root, 'ipxe.efi'), 'utf8'), 'binary ipxe.efi v2');
});

test("works with Debian's real ipxe package", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dl-prov-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bootFiles = validateConfig({}).bootFiles;
  await provisionBootFiles(bootFiles, dir);
  assert.equal((await stat(join(dir, 'undionly.kpxe'))).size, (await stat('/usr/lib/ipxe/undionly.kpxe')).size);
});

test('a missing source is BOOT_FILE_MISSING naming bootFiles.ipxeDir', async (t) => {
  const f = await fixture();
  t.after(() => rm(f.dir, { recursive: true, force: true }));
  await assert.rejects(provisionBootFiles({ ...f.bootFiles, ipxeDir: join(f.dir, 'nope') }, f.root), (e: unknown) => isDisklessError(e, 'BOOT_FILE_MISSING') && e.data.key === 'bootFiles.ipxeDir');
});
