import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_DISK_MIN_SIZE, DEMO_DISK_SIZE, DEMO_EFI_PATH, DEMO_ESP, DEMO_MARKER, MBR_TYPE_EFI_SYSTEM, demoMbr, writeDemoDisk } from './demo-disk.js';
import { buildEfiApp } from './efi-app.js';
import { isDisklessError } from '../errors/index.js';

// The hybrid demo disk: LAB.md §3 BIOS boot code in the MBR, plus an EFI system partition that
// independent tools (dosfstools, mtools, reading at the partition's offset) accept.
const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };

test('MBR: boot code that waits for the UART, the text, one EFI system partition entry, 55 AA', () => {
  const mbr = demoMbr();
  assert.equal(mbr.length, 512);
  assert.equal(mbr.subarray(0, 34).toString('hex'), '31c08ed8fcbe227cac84c0741288c4bafd03eca82074fbbaf80388e0eeebe9f4ebfd');
  assert.equal(mbr.subarray(34, 48).toString('latin1'), `${DEMO_MARKER}\r\n\0`);
  assert.ok(mbr.subarray(48, 440).every((b) => b === 0), 'nothing else in the code area');
  const entry = mbr.subarray(446, 462);
  assert.equal(entry[0], 0x00, 'not marked active: the BIOS code does not look at the table');
  assert.equal(entry[4], MBR_TYPE_EFI_SYSTEM);
  assert.equal(entry.readUInt32LE(8), DEMO_ESP.firstLba);
  assert.equal(entry.readUInt32LE(12), DEMO_ESP.sectors);
  // CHS of LBA 2048 = 0/32/33 and of LBA 18431 = 1/37/36 (255 heads, 63 sectors).
  assert.deepEqual([...entry.subarray(1, 4)], [32, 33, 0]);
  assert.deepEqual([...entry.subarray(5, 8)], [37, 36, 1]);
  assert.ok(mbr.subarray(462, 510).every((b) => b === 0), 'the other three entries are empty');
  assert.equal(mbr.readUInt16BE(510), 0x55aa);
});

test('the boot code disassembles (objdump, i8086) to the documented program: text at 0x7c22, LSR polled before each byte', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'du-mbr-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bin = join(dir, 'code.bin');
  await writeFile(bin, demoMbr().subarray(0, 34));
  const listing = execFileSync('objdump', ['-D', '-b', 'binary', '-mi8086', '--adjust-vma=0x7c00', bin], { encoding: 'utf8' });
  const instructions = [...listing.matchAll(/^\s*7c[0-9a-f]{2}:\s+(?:[0-9a-f]{2} )+\s*(.+)$/gm)].map((m) => m[1]!.replace(/\s+/g, ' ').trim());
  assert.deepEqual(instructions, [
    'xor %ax,%ax',
    'mov %ax,%ds',
    'cld',
    'mov $0x7c22,%si',
    'lods %ds:(%si),%al',
    'test %al,%al',
    'je 0x7c1f',
    'mov %al,%ah',
    'mov $0x3fd,%dx',
    'in (%dx),%al',
    'test $0x20,%al',
    'je 0x7c12',
    'mov $0x3f8,%dx',
    'mov %ah,%al',
    'out %al,(%dx)',
    'jmp 0x7c08',
    'hlt',
    'jmp 0x7c1f',
  ]);
  assert.equal(demoMbr().subarray(0x22, 0x22 + DEMO_MARKER.length).toString('latin1'), DEMO_MARKER);
});

test('writeDemoDisk: sparse file, the ESP passes fsck.fat and holds \\EFI\\BOOT\\BOOTX64.EFI', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'du-demo-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'demo.img');
  await writeDemoDisk(path);
  const st = await stat(path);
  assert.equal(st.size, DEMO_DISK_SIZE);
  assert.ok(st.blocks * 512 < 1024 * 1024, `sparse: ${st.blocks * 512} bytes allocated`);
  const disk = await readFile(path);
  assert.deepEqual(disk.subarray(0, 512), demoMbr());
  assert.ok(disk.subarray(512, DEMO_ESP.firstLba * 512).every((b) => b === 0), 'gap before the partition is empty');
  // The FAT boot sector records the partition's LBA as its hidden sectors.
  const esp = disk.subarray(DEMO_ESP.firstLba * 512, (DEMO_ESP.firstLba + DEMO_ESP.sectors) * 512);
  assert.equal(esp.readUInt32LE(28), DEMO_ESP.firstLba);
  const image = `${path}@@${DEMO_ESP.firstLba * 512}`;
  // fsck.fat 4.2 has no offset option: check the partition's bytes as a file of their own.
  await writeFile(join(dir, 'esp.img'), esp);
  const fsck = spawnSync('fsck.fat', ['-n', join(dir, 'esp.img')], { encoding: 'utf8' });
  assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);
  // EFI and BOOT take a cluster each, the 1 KiB application two (512-byte clusters).
  assert.match(fsck.stdout, /: 4 files, 4\/16223 clusters/);
  const listing = execFileSync('mdir', ['-b', '-/', '-i', image, '::'], { env, encoding: 'utf8' });
  assert.deepEqual(listing.trim().split('\n').sort(), ['::/EFI/', '::/EFI/BOOT/', '::/EFI/BOOT/BOOTX64.EFI']);
  const app = execFileSync('mtype', ['-i', image, `::${DEMO_EFI_PATH}`], { env });
  assert.deepEqual(app, buildEfiApp(`${DEMO_MARKER}\r\n`));
});

test('writeDemoDisk: sizes that cannot hold the ESP, or not sector multiples, are refused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'du-demo-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const size of [100, 512, DEMO_DISK_MIN_SIZE - 512, DEMO_DISK_MIN_SIZE + 1]) {
    await assert.rejects(writeDemoDisk(join(dir, 'x.img'), size), (e: unknown) => isDisklessError(e, 'STORE_INVALID_SIZE') && e.data.field === 'sizeBytes');
  }
  await writeDemoDisk(join(dir, 'min.img'), DEMO_DISK_MIN_SIZE);
  assert.equal((await stat(join(dir, 'min.img'))).size, DEMO_DISK_MIN_SIZE);
});
