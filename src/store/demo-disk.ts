import { open } from 'node:fs/promises';
import { DisklessError } from '../errors/index.js';

/** The text the demo disk prints on COM1; the lab waits for it on the serial console. */
export const DEMO_MARKER = 'DISKLESS-OK';
/** Default demo disk size: 64 MiB (LAB.md §3). */
export const DEMO_DISK_SIZE = 64 * 1024 * 1024;

/**
 * Real-mode boot code (LAB.md §3), loaded by the BIOS at 0000:7C00:
 *   xor ax,ax; mov ds,ax; cld; mov si,0x7c16; mov dx,0x3f8
 *   loop: lodsb; test al,al; jz done; out dx,al; jmp loop
 *   done: hlt; jmp done
 * 0x7c16 = 0x7c00 + 22, where the NUL-terminated message starts.
 */
const BOOT_CODE = Buffer.from([0x31, 0xc0, 0x8e, 0xd8, 0xfc, 0xbe, 0x16, 0x7c, 0xba, 0xf8, 0x03, 0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8, 0xf4, 0xeb, 0xfd]);
/** Offset of the 0x55 0xAA boot signature in a master boot record. */
const MBR_SIGNATURE_OFFSET = 510;
const MBR_SIZE = 512;

/**
 * The 512-byte master boot record of the demo disk: boot code, `DISKLESS-OK\r\n\0`, zeros,
 * then the 55 AA signature. No partition table. Write it at offset 0 of any volume (e.g.
 * `device.write(0, demoMbr())` on a freshly created one) to make that volume the demo disk.
 */
export function demoMbr(): Buffer {
  const mbr = Buffer.alloc(MBR_SIZE);
  BOOT_CODE.copy(mbr, 0);
  mbr.write(`${DEMO_MARKER}\r\n\0`, BOOT_CODE.length, 'latin1');
  mbr[MBR_SIGNATURE_OFFSET] = 0x55;
  mbr[MBR_SIGNATURE_OFFSET + 1] = 0xaa;
  return mbr;
}

/**
 * Writes the demo disk as a sparse file at `path` (created or truncated): `demoMbr()` then
 * zeros up to `sizeBytes` (a multiple of 512, at least 512). Feed the file to
 * `StorageDriver.create(name, { from: path })`, or serve it directly.
 */
export async function writeDemoDisk(path: string, sizeBytes: number = DEMO_DISK_SIZE): Promise<void> {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < MBR_SIZE || sizeBytes % MBR_SIZE !== 0) {
    throw new DisklessError('STORE_INVALID_SIZE', `cannot write demo disk: size ${sizeBytes} is not a multiple of 512 of at least 512`, { field: 'sizeBytes', value: sizeBytes });
  }
  const fh = await open(path, 'w');
  try {
    await fh.write(demoMbr(), 0, MBR_SIZE, 0);
    await fh.truncate(sizeBytes);
  } finally {
    await fh.close();
  }
}
