import { open } from 'node:fs/promises';
import { DisklessError } from '../errors/index.js';
import { buildEfiApp } from './efi-app.js';
import { buildFatImage } from './fat-image.js';

/** The text the demo disk prints on COM1; the lab waits for it on the serial console. */
export const DEMO_MARKER = 'DISKLESS-OK';
/** Default demo disk size: 64 MiB (LAB.md §3). */
export const DEMO_DISK_SIZE = 64 * 1024 * 1024;

/**
 * Real-mode boot code, loaded by the BIOS at 0000:7C00. LAB.md §3's 22-byte program, plus a
 * wait for the UART: before each byte it polls the line status register (COM1 + 5) until
 * THRE (bit 5, transmit holding register empty) is set.
 *   xor ax,ax; mov ds,ax; cld; mov si,0x7c22
 *   loop: lodsb; test al,al; jz done; mov ah,al
 *         mov dx,0x3fd; wait: in al,dx; test al,0x20; jz wait
 *         mov dx,0x3f8; mov al,ah; out dx,al; jmp loop
 *   done: hlt; jmp done
 * 0x7c22 = 0x7c00 + 34, where the NUL-terminated message starts.
 *
 * Why the wait: when QEMU's serial backend (the pipe to the lab) falls behind, QEMU's 16550
 * keeps THRE clear and a byte written meanwhile replaces the one not yet sent. LAB.md's
 * version printed "D" and lost "ISKLESS-OK" in about one boot in ten with two VMs on two busy
 * cores (seen in `make test`); iPXE and our UEFI app already wait like this.
 */
const BOOT_CODE = Buffer.from([
  0x31, 0xc0, 0x8e, 0xd8, 0xfc, 0xbe, 0x22, 0x7c, // xor ax,ax; mov ds,ax; cld; mov si,0x7c22
  0xac, 0x84, 0xc0, 0x74, 0x12, 0x88, 0xc4, // loop: lodsb; test al,al; jz done; mov ah,al
  0xba, 0xfd, 0x03, 0xec, 0xa8, 0x20, 0x74, 0xfb, // mov dx,0x3fd; wait: in al,dx; test al,0x20; jz wait
  0xba, 0xf8, 0x03, 0x88, 0xe0, 0xee, 0xeb, 0xe9, // mov dx,0x3f8; mov al,ah; out dx,al; jmp loop
  0xf4, 0xeb, 0xfd, // done: hlt; jmp done
]);
/** Offset of the 0x55 0xAA boot signature in a master boot record. */
const MBR_SIGNATURE_OFFSET = 510;
const MBR_SIZE = 512;
/** MBR layout: 32-bit disk signature at 440, four 16-byte partition entries from 446. */
const MBR_DISK_SIGNATURE_OFFSET = 440;
const MBR_PARTITION_TABLE_OFFSET = 446;
/** The demo disk's MBR disk signature, "DKLS" read as a little-endian number. */
const DEMO_DISK_SIGNATURE = 0x534c4b44;
/** MBR partition type of an EFI system partition (UEFI 2.10 §5.2.2, table 5-2). */
export const MBR_TYPE_EFI_SYSTEM = 0xef;

/**
 * Where the demo disk's EFI system partition lies: from LBA 2048 (1 MiB, the usual alignment)
 * for 8 MiB, a FAT16 volume holding \EFI\BOOT\BOOTX64.EFI. Fixed, so `demoMbr()` is the same
 * for every disk size.
 */
export const DEMO_ESP = { firstLba: 2048, sectors: 16384 } as const;
/** The smallest demo disk: up to the end of the EFI system partition (9 MiB). */
export const DEMO_DISK_MIN_SIZE = (DEMO_ESP.firstLba + DEMO_ESP.sectors) * MBR_SIZE;
/** Path of the UEFI application in the EFI system partition (UEFI 2.10 §3.5.1.1). */
export const DEMO_EFI_PATH = '/EFI/BOOT/BOOTX64.EFI';

/**
 * The 512-byte master boot record of the demo disk, a hybrid: the LAB.md §3 real-mode boot code
 * and `DISKLESS-OK\r\n\0` from offset 0 (a BIOS runs them and never looks further), the disk
 * signature at 440, one partition entry at 446 (type 0xEF, EFI system partition, `DEMO_ESP`)
 * that UEFI firmware and iPXE's UEFI sanboot use, and 55 AA at 510. The other three entries
 * are empty. Written at offset 0 of a volume without `demoEsp()` it still boots under BIOS.
 */
export function demoMbr(): Buffer {
  const mbr = Buffer.alloc(MBR_SIZE);
  BOOT_CODE.copy(mbr, 0);
  mbr.write(`${DEMO_MARKER}\r\n\0`, BOOT_CODE.length, 'latin1');
  mbr.writeUInt32LE(DEMO_DISK_SIGNATURE, MBR_DISK_SIGNATURE_OFFSET);
  writePartitionEntry(mbr, MBR_PARTITION_TABLE_OFFSET, MBR_TYPE_EFI_SYSTEM, DEMO_ESP.firstLba, DEMO_ESP.sectors);
  mbr[MBR_SIGNATURE_OFFSET] = 0x55;
  mbr[MBR_SIGNATURE_OFFSET + 1] = 0xaa;
  return mbr;
}

/**
 * The demo disk's EFI system partition (`DEMO_ESP.sectors` × 512 bytes): a FAT16 volume
 * labelled DISKLESS with one file, \EFI\BOOT\BOOTX64.EFI, the `buildEfiApp` program that
 * prints `DISKLESS-OK\r\n` on COM1 and ConOut and halts.
 */
export function demoEsp(): Buffer {
  return buildFatImage({
    sizeBytes: DEMO_ESP.sectors * MBR_SIZE,
    label: 'DISKLESS',
    hiddenSectors: DEMO_ESP.firstLba,
    files: [{ path: DEMO_EFI_PATH, data: buildEfiApp(`${DEMO_MARKER}\r\n`) }],
  });
}

/**
 * One MBR partition entry: status (not active), CHS of the first sector, type, CHS of the last
 * sector, first LBA, sector count. CHS uses the 255-head, 63-sector translation and saturates at
 * FE FF FF past cylinder 1023, as partitioning tools do; UEFI and Linux read only the LBAs.
 */
function writePartitionEntry(mbr: Buffer, at: number, type: number, firstLba: number, sectors: number): void {
  mbr[at] = 0x00;
  mbr.set(chs(firstLba), at + 1);
  mbr[at + 4] = type;
  mbr.set(chs(firstLba + sectors - 1), at + 5);
  mbr.writeUInt32LE(firstLba, at + 8);
  mbr.writeUInt32LE(sectors, at + 12);
}

function chs(lba: number): number[] {
  const heads = 255;
  const perTrack = 63;
  const c = Math.floor(lba / (heads * perTrack));
  if (c > 1023) return [0xfe, 0xff, 0xff];
  const h = Math.floor(lba / perTrack) % heads;
  const s = (lba % perTrack) + 1;
  return [h, s | ((c >> 2) & 0xc0), c & 0xff];
}

/**
 * Writes the demo disk as a sparse file at `path` (created or truncated): `demoMbr()` at 0,
 * `demoEsp()` at LBA 2048 (its used sectors; the rest stays a hole), zeros up to `sizeBytes`
 * (a multiple of 512, at least `DEMO_DISK_MIN_SIZE`). It boots to the marker under BIOS (the
 * MBR code) and UEFI (\EFI\BOOT\BOOTX64.EFI). Feed the file to
 * `StorageDriver.create(name, { from: path })`, or serve it directly. Layout: docs/demo-disk.md.
 */
export async function writeDemoDisk(path: string, sizeBytes: number = DEMO_DISK_SIZE): Promise<void> {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < DEMO_DISK_MIN_SIZE || sizeBytes % MBR_SIZE !== 0) {
    throw new DisklessError('STORE_INVALID_SIZE', `cannot write demo disk: size ${sizeBytes} is not a multiple of 512 of at least ${DEMO_DISK_MIN_SIZE}`, {
      field: 'sizeBytes',
      value: sizeBytes,
      allowed: `a multiple of 512, at least ${DEMO_DISK_MIN_SIZE} (MBR, 1 MiB gap, 8 MiB EFI system partition)`,
    });
  }
  const esp = demoEsp();
  const used = usedLength(esp);
  const fh = await open(path, 'w');
  try {
    await fh.write(demoMbr(), 0, MBR_SIZE, 0);
    await fh.write(esp, 0, used, DEMO_ESP.firstLba * MBR_SIZE);
    await fh.truncate(sizeBytes);
  } finally {
    await fh.close();
  }
}

/** Length of `image` up to its last non-zero sector (the rest may stay a hole in a sparse file). */
function usedLength(image: Buffer): number {
  let end = image.length;
  while (end > 0 && image[end - 1] === 0) end--;
  return Math.ceil(end / MBR_SIZE) * MBR_SIZE;
}
