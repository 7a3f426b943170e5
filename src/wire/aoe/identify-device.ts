import { DisklessError } from '../../errors/index.js';

/**
 * The 512-byte IDENTIFY DEVICE data an AoE target returns (ATA8-ACS §7.16, words of 16 bits,
 * little-endian). Filled in: a fixed ATA device with LBA and LBA48, CHS geometry for
 * firmware that still asks for it (16 heads, 63 sectors per track, at most 16383 cylinders),
 * serial, firmware revision and model strings, the volatile write cache and FLUSH CACHE
 * (EXT) so initiators flush, CHECK POWER MODE (power management), the logical/physical
 * sector sizes, and the integrity word (signature A5h, checksum). Pure.
 */

export const IDENTIFY_LENGTH = 512;
/** Highest sector count the 28-bit fields (words 60-61) can hold. */
export const MAX_LBA28_SECTORS = 0x0fffffff;
const HEADS = 16;
const SECTORS_PER_TRACK = 63;
const MAX_CYLINDERS = 16383;

export interface IdentifyInput {
  /** Capacity in 512-byte sectors. */
  readonly sectors: number;
  /** At most 20 printable ASCII characters (space-padded). */
  readonly serial: string;
  /** At most 8. */
  readonly firmware: string;
  /** At most 40. */
  readonly model: string;
  /** Bytes per physical block of the volume (512 or a power-of-two multiple, up to 32 KiB). Default 512. */
  readonly physicalBlockSize?: number;
}

export interface IdentifyGeometry {
  readonly cylinders: number;
  readonly heads: number;
  readonly sectorsPerTrack: number;
}

/** The CHS geometry reported for `sectors` (the customary translation: 16 heads, 63 sectors, cylinders capped at 16383). */
export function identifyGeometry(sectors: number): IdentifyGeometry {
  return { cylinders: Math.min(MAX_CYLINDERS, Math.floor(sectors / (HEADS * SECTORS_PER_TRACK))), heads: HEADS, sectorsPerTrack: SECTORS_PER_TRACK };
}

export function encodeIdentifyDevice(input: IdentifyInput): Buffer {
  if (!Number.isSafeInteger(input.sectors) || input.sectors < 1 || input.sectors > 2 ** 48 - 1) {
    throw new DisklessError('WIRE_BAD_FIELD', `cannot encode IDENTIFY DEVICE: ${input.sectors} sectors, allowed 1-${2 ** 48 - 1}`, { layer: 'aoe', field: 'sectors', value: input.sectors, allowed: `1-${2 ** 48 - 1}` });
  }
  const physical = input.physicalBlockSize ?? 512;
  const ratioLog2 = Math.log2(physical / 512);
  if (!Number.isInteger(ratioLog2) || ratioLog2 < 0 || ratioLog2 > 6) {
    throw new DisklessError('WIRE_BAD_FIELD', `cannot encode IDENTIFY DEVICE: physical block size ${physical}, allowed 512 × 2^0..2^6`, { layer: 'aoe', field: 'physicalBlockSize', value: physical, allowed: [512, 1024, 2048, 4096, 8192, 16384, 32768] });
  }
  const out = Buffer.alloc(IDENTIFY_LENGTH);
  const word = (i: number, v: number): void => void out.writeUInt16LE(v, i * 2);
  const g = identifyGeometry(input.sectors);
  word(0, 0x0040); // ATA device, fixed (not removable)
  word(1, g.cylinders);
  word(3, g.heads);
  word(6, g.sectorsPerTrack);
  putString(out, 10, 20, input.serial, 'serial');
  putString(out, 23, 8, input.firmware, 'firmware');
  putString(out, 27, 40, input.model, 'model');
  word(47, 0x8000); // READ/WRITE MULTIPLE: not supported (count 0)
  word(49, 0x0200); // LBA supported
  word(50, 0x4000);
  word(53, 0x0001); // words 54-58 valid
  word(54, g.cylinders);
  word(55, g.heads);
  word(56, g.sectorsPerTrack);
  const chs = g.cylinders * g.heads * g.sectorsPerTrack;
  word(57, chs & 0xffff);
  word(58, Math.floor(chs / 0x10000));
  const lba28 = Math.min(input.sectors, MAX_LBA28_SECTORS);
  word(60, lba28 & 0xffff);
  word(61, Math.floor(lba28 / 0x10000));
  word(80, 0x01f0); // ATA/ATAPI-4 to ATA8-ACS
  word(82, 0x4028); // NOP, volatile write cache, power management
  word(83, 0x7400); // bit 14 one, FLUSH CACHE EXT, FLUSH CACHE (bit 12), 48-bit address
  word(84, 0x4000);
  word(85, 0x4028); // the same, enabled
  word(86, 0x3400);
  word(87, 0x4000);
  for (let i = 0; i < 3; i++) word(100 + i, Math.floor(input.sectors / 2 ** (16 * i)) & 0xffff);
  word(103, 0);
  word(106, 0x4000 | (ratioLog2 > 0 ? 0x2000 | ratioLog2 : 0));
  out[510] = 0xa5;
  let sum = 0;
  for (let i = 0; i < 511; i++) sum += out[i]!;
  out[511] = (256 - (sum & 0xff)) & 0xff;
  return out;
}

/** An ATA string: two characters per word, the first in the word's high byte, space-padded. */
function putString(out: Buffer, word: number, length: number, text: string, field: string): void {
  if (text.length > length || !/^[\x20-\x7e]*$/.test(text)) {
    throw new DisklessError('WIRE_BAD_FIELD', `cannot encode IDENTIFY DEVICE ${field} ${JSON.stringify(text)}: at most ${length} printable ASCII characters`, { layer: 'aoe', field, value: text, allowed: `${length} printable ASCII characters` });
  }
  const padded = text.padEnd(length, ' ');
  for (let i = 0; i < length; i += 2) {
    out[word * 2 + i] = padded.charCodeAt(i + 1);
    out[word * 2 + i + 1] = padded.charCodeAt(i);
  }
}

/** Reads an ATA string back (for tests and the initiator): trailing spaces removed. */
export function identifyString(data: Buffer, word: number, length: number): string {
  let s = '';
  for (let i = 0; i < length; i += 2) s += String.fromCharCode(data[word * 2 + i + 1]!, data[word * 2 + i]!);
  return s.trimEnd();
}

/** Capacity in sectors from IDENTIFY data: words 100-103 when LBA48 is supported (word 83 bit 10), else words 60-61. */
export function identifySectors(data: Buffer): number {
  if (data.length < IDENTIFY_LENGTH) {
    throw new DisklessError('WIRE_TRUNCATED', `cannot read IDENTIFY DEVICE data: ${data.length} bytes, need ${IDENTIFY_LENGTH}`, { layer: 'aoe', length: data.length });
  }
  if ((data.readUInt16LE(83 * 2) & 0x0400) !== 0) return data.readUIntLE(200, 6);
  return data.readUInt32LE(120);
}
