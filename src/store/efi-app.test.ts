import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EFI_APP_CODE_LENGTH, EFI_APP_CODE_OFFSET, buildEfiApp } from './efi-app.js';
import { isDisklessError } from '../errors/index.js';

// The image is checked field by field against the PE/COFF layout and then handed to binutils'
// objdump (an independent PE reader and x86-64 disassembler, installed with g++). Booting it
// under OVMF is test/e2e/uefi-native-pxe.test.ts.

const app = buildEfiApp('DISKLESS-OK\r\n');

function objdump(args: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'du-efi-'));
  try {
    const path = join(dir, 'app.efi');
    writeFileSync(path, app);
    return execFileSync('objdump', [...args, path], { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('PE32+ headers: MZ/e_lfanew, AMD64, EFI application, one .text section, relocations not stripped', () => {
  assert.equal(app.length, 0x400);
  assert.equal(app.subarray(0, 2).toString('latin1'), 'MZ');
  const pe = app.readUInt32LE(0x3c);
  assert.equal(app.subarray(pe, pe + 4).toString('latin1'), 'PE\0\0');
  assert.equal(app.readUInt16LE(pe + 4), 0x8664);
  assert.equal(app.readUInt16LE(pe + 6), 1);
  assert.equal(app.readUInt16LE(pe + 20), 240);
  const characteristics = app.readUInt16LE(pe + 22);
  assert.equal(characteristics & 0x0001, 0, 'IMAGE_FILE_RELOCS_STRIPPED is clear: the loader may place it anywhere');
  assert.equal(characteristics & 0x0002, 0x0002);
  const opt = pe + 24;
  assert.equal(app.readUInt16LE(opt), 0x20b);
  assert.equal(app.readUInt32LE(opt + 16), 0x1000, 'entry point');
  assert.equal(app.readUInt32LE(opt + 32), 0x1000, 'section alignment');
  assert.equal(app.readUInt32LE(opt + 36), 0x200, 'file alignment');
  assert.equal(app.readUInt32LE(opt + 56), 0x2000, 'size of image');
  assert.equal(app.readUInt32LE(opt + 60), 0x200, 'size of headers');
  assert.equal(app.readUInt16LE(opt + 68), 10, 'EFI_APPLICATION');
  assert.equal(app.readUInt32LE(opt + 108), 16);
  assert.ok(app.subarray(opt + 112, opt + 240).every((b) => b === 0), 'no data directories: no relocations, imports or certificates');
  const sec = opt + 240;
  assert.equal(app.subarray(sec, sec + 8).toString('latin1'), '.text\0\0\0');
  assert.equal(app.readUInt32LE(sec + 12), 0x1000);
  assert.equal(app.readUInt32LE(sec + 20), 0x200);
  assert.equal(app.readUInt32LE(sec + 36), 0x60000020);
});

test('objdump reads it as an x86-64 EFI application', () => {
  const headers = objdump(['-x']);
  assert.match(headers, /file format pei-x86-64/);
  assert.match(headers, /Subsystem\s+0000000a\s+\(EFI application\)/);
  assert.match(headers, /AddressOfEntryPoint\s+0+1000/);
});

test('the code disassembles to the documented listing, and both lea point at the messages', () => {
  const listing = objdump(['-d', '-M', 'intel', '--start-address=0x10001000', `--stop-address=0x${(0x10001000 + EFI_APP_CODE_LENGTH).toString(16)}`])
    .split('\n')
    .filter((l) => /^\s+[0-9a-f]+:\t/.test(l))
    .map((l) => l.split('\t')[2]!.replace(/\s+/g, ' ').replace(/ #.*$/, '').trim());
  assert.deepEqual(listing, [
    'push rbx',
    'sub rsp,0x20',
    'mov rbx,rdx',
    'lea rsi,[rip+0x3a]',
    'mov dx,0x3fd',
    'in al,dx',
    'test al,0x20',
    'je 0x10001013',
    'lods al,BYTE PTR ds:[rsi]',
    'test al,al',
    'je 0x10001024',
    'mov dx,0x3f8',
    'out dx,al',
    'jmp 0x1000100f',
    'mov rax,QWORD PTR [rbx+0x60]',
    'xor ecx,ecx',
    'xor edx,edx',
    'xor r8d,r8d',
    'xor r9d,r9d',
    'call QWORD PTR [rax+0x100]',
    'mov rcx,QWORD PTR [rbx+0x40]',
    'lea rdx,[rip+0x15]',
    'call QWORD PTR [rcx+0x8]',
    'hlt',
    'jmp 0x10001046',
  ]);
  const text = app.subarray(EFI_APP_CODE_OFFSET);
  // lea rsi at 0x8 (7 bytes): rip 0xf + 0x3a = 0x49, right after the code.
  assert.equal(0x0f + 0x3a, EFI_APP_CODE_LENGTH);
  assert.equal(text.subarray(0x49, 0x49 + 14).toString('latin1'), 'DISKLESS-OK\r\n\0');
  // lea rdx at 0x3c (7 bytes): rip 0x43 + 0x15 = 0x58, the UTF-16 copy.
  assert.equal(text.subarray(0x58, 0x58 + 28).toString('utf16le'), 'DISKLESS-OK\r\n\0');
});

test('messages outside printable ASCII are refused', () => {
  for (const bad of ['', 'x'.repeat(201), 'caf\u00e9', 'tab\there', 'nul\0']) {
    assert.throws(() => buildEfiApp(bad), (e: unknown) => isDisklessError(e, 'STORE_INVALID_IMAGE') && e.data.field === 'message');
  }
  const long = buildEfiApp('y'.repeat(200));
  assert.equal(long.length, 0x400 + 0x200, 'a longer message spills into a second file-aligned block');
});
