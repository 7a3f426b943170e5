import { DisklessError } from '../../errors/index.js';
import { AOE_HEADER_LENGTH, checkField } from './aoe-header.js';

/**
 * The argument of an AoE ATA command (AoE r11 §3), after the AoE header:
 *
 *   0 AFlags   1 Err/Feature   2 Sector Count   3 Cmd/Status   4-9 LBA0..LBA5   10-11 reserved
 *   12...  data (count × 512 bytes for a write request or a read response)
 *
 * The LBA bytes are least significant first (they map onto the ATA task-file registers).
 * Requests carry the feature and command; responses carry the error and status. Pure.
 */

/** Bytes of the ATA argument header before the data. */
export const ATA_HEADER_LENGTH = 12;
export const SECTOR_SIZE = 512;

/** AFlags bits (AoE r11 §3.1). */
export const AtaFlag = {
  /** E: an LBA48 (extended) command: all six LBA bytes count. */
  extended: 0x40,
  /** D: the ATA device/head register's DEV bit. */
  device: 0x10,
  /** A: asynchronous write: the target may answer before the data is on the medium. */
  async: 0x02,
  /** W: the command writes data to the device (data follows the header). */
  write: 0x01,
} as const;

/** ATA commands a target serves (ATA/ATAPI-8 ACS). */
export const AtaOpcode = {
  readSectors: 0x20,
  readSectorsExt: 0x24,
  writeSectors: 0x30,
  writeSectorsExt: 0x34,
  checkPowerMode: 0xe5,
  flushCache: 0xe7,
  flushCacheExt: 0xea,
  identifyDevice: 0xec,
} as const;

/** ATA Status register bits. */
export const AtaStatus = {
  busy: 0x80,
  /** DRDY: the device is ready for commands. */
  ready: 0x40,
  deviceFault: 0x20,
  /** DSC: seek complete (legacy, set by drives at rest). */
  seekComplete: 0x10,
  dataRequest: 0x08,
  /** ERR: the Error register says why the command failed. */
  error: 0x01,
} as const;

/** ATA Error register bits. */
export const AtaErrorBit = {
  /** UNC: uncorrectable data (a read that failed its checks). */
  uncorrectable: 0x40,
  /** IDNF: the address is outside the device. */
  idNotFound: 0x10,
  /** ABRT: the command was aborted (unknown or not allowed). */
  aborted: 0x04,
} as const;

/** CHECK POWER MODE's sector-count result for an active or idle device. */
export const POWER_MODE_ACTIVE = 0xff;

export interface AtaArg {
  readonly flags: number;
  /** Feature (request) or Error register (response). */
  readonly featureOrError: number;
  readonly sectorCount: number;
  /** Command (request) or Status register (response). */
  readonly commandOrStatus: number;
  /** The six LBA bytes as one number (little-endian on the wire); see `effectiveLba`. */
  readonly lba: number;
  /** Bytes after the 12-byte header (a view into the input, not a copy). */
  readonly data: Buffer;
}

/** Decodes the ATA argument (`arg`: the message after the AoE header). */
export function decodeAtaArg(arg: Buffer): AtaArg {
  if (arg.length < ATA_HEADER_LENGTH) {
    throw new DisklessError('WIRE_TRUNCATED', `cannot decode AoE ATA header: ${arg.length} bytes, need ${ATA_HEADER_LENGTH}`, { layer: 'aoe', length: arg.length });
  }
  return {
    flags: arg[0]!,
    featureOrError: arg[1]!,
    sectorCount: arg[2]!,
    commandOrStatus: arg[3]!,
    lba: arg.readUIntLE(4, 6),
    data: arg.subarray(ATA_HEADER_LENGTH),
  };
}

/**
 * The address an ATA command means: all 48 bits for an extended command, else the 28-bit
 * LBA of the task file (LBA0-2 and the low nibble of the device register, LBA3).
 */
export function effectiveLba(arg: Pick<AtaArg, 'flags' | 'lba'>): number {
  return (arg.flags & AtaFlag.extended) !== 0 ? arg.lba : arg.lba % 0x10000000;
}

/** Writes the 12-byte ATA header of `arg` (without its data) at `out[offset]`. */
export function writeAtaHeader(arg: Omit<AtaArg, 'data'>, out: Buffer, offset = 0): void {
  checkField('ATA flags', arg.flags, 0xff);
  checkField('ATA feature/error', arg.featureOrError, 0xff);
  checkField('ATA sector count', arg.sectorCount, 0xff);
  checkField('ATA command/status', arg.commandOrStatus, 0xff);
  checkField('ATA LBA', arg.lba, 2 ** 48 - 1);
  out[offset] = arg.flags;
  out[offset + 1] = arg.featureOrError;
  out[offset + 2] = arg.sectorCount;
  out[offset + 3] = arg.commandOrStatus;
  out.writeUIntLE(arg.lba, offset + 4, 6);
  out[offset + 10] = 0;
  out[offset + 11] = 0;
}

/** Most sectors one ATA command carries on a link of this MTU: AoE and ATA headers, then whole sectors (1500 → 2, 9000 → 17), at most 255. */
export function sectorsPerFrame(mtu: number): number {
  return Math.max(0, Math.min(255, Math.floor((mtu - AOE_HEADER_LENGTH - ATA_HEADER_LENGTH) / SECTOR_SIZE)));
}
