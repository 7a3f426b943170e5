/**
 * What a target says about itself, decoded for the initiator: its Query Config answer (address,
 * MAC, Buffer Count, sectors per frame, config string) and its IDENTIFY DEVICE data (capacity,
 * LBA48, strings). Pure; AoeInitiator calls these once per target, tests call them on captures.
 */
import { DisklessError } from '../../errors/index.js';
import { decodeAoeHeader } from '../../wire/aoe/aoe-header.js';
import { AOE_ARG_OFFSET, AOE_OFFSET } from '../../wire/aoe/aoe-frame.js';
import { IDENTIFY_LENGTH, identifySectors, identifyString } from '../../wire/aoe/identify-device.js';
import { decodeQueryConfig, encodeQueryConfig } from '../../wire/aoe/query-config.js';

/** IDENTIFY DEVICE word 83 bits (ATA8-ACS §7.16.7.41): 48-bit addressing, FLUSH CACHE EXT. */
const IDENTIFY_WORD83_LBA48 = 0x0400;
const IDENTIFY_WORD83_FLUSH_EXT = 0x2000;

/** One target's Query Config answer (AoE r11 §3.2). */
export interface AoeTargetInfo {
  /** 6 bytes. */
  readonly mac: Buffer;
  readonly shelf: number;
  readonly slot: number;
  /** Commands the target can queue. */
  readonly bufferCount: number;
  readonly firmwareVersion: number;
  /** Most sectors one ATA command may carry (vblade: (MTU - 36) / 512). */
  readonly sectorCount: number;
  readonly aoeVersion: number;
  /** The config string (a copy). */
  readonly config: Buffer;
}

/** What IDENTIFY DEVICE says. */
export interface AoeIdentity {
  /** Capacity in 512-byte sectors. */
  readonly sectors: number;
  /** 48-bit addressing (word 83 bit 10): reads and writes use the EXT commands. */
  readonly lba48: boolean;
  /** FLUSH CACHE EXT supported (word 83 bit 13). */
  readonly flushExt: boolean;
  readonly model: string;
  readonly serial: string;
  readonly firmware: string;
  /** The 512 bytes (a copy). */
  readonly data: Buffer;
}

/** A connected target: both answers and what the initiator derived from them. */
export interface AoeDevice extends AoeTargetInfo {
  readonly identity: AoeIdentity;
  /** Commands kept in flight: min(bufferCount, maxOutstanding), at least 1. */
  readonly window: number;
  /** Sectors per read/write command: the target's, capped by this interface's MTU and `maxSectorsPerCommand`. */
  readonly sectorsPerCommand: number;
}

/** A Query Config request argument with `command` (ConfigCommand) and `config`. */
export function queryConfigArg(command: number, config: Buffer = Buffer.alloc(0)): Buffer {
  return encodeQueryConfig({ bufferCount: 0, firmwareVersion: 0, sectorCount: 0, aoeVersion: 1, command, config });
}

/** The Query Config answer in `frame` (a whole Ethernet frame), copied out of it. Throws WIRE_* on a malformed argument. */
export function decodeTargetInfo(frame: Buffer): AoeTargetInfo {
  const header = decodeAoeHeader(frame.subarray(AOE_OFFSET));
  const qc = decodeQueryConfig(frame.subarray(AOE_ARG_OFFSET));
  return {
    mac: Buffer.from(frame.subarray(6, 12)),
    shelf: header.shelf,
    slot: header.slot,
    bufferCount: qc.bufferCount,
    firmwareVersion: qc.firmwareVersion,
    sectorCount: qc.sectorCount,
    aoeVersion: qc.aoeVersion,
    config: Buffer.from(qc.config),
  };
}

/** IDENTIFY DEVICE data (the answer's sector data); AOE_BAD_RESPONSE when shorter than 512 bytes. */
export function decodeIdentity(data: Buffer): AoeIdentity {
  if (data.length < IDENTIFY_LENGTH) {
    throw new DisklessError('AOE_BAD_RESPONSE', `AoE answer to IDENTIFY DEVICE: ${data.length} data bytes, need ${IDENTIFY_LENGTH}`, { length: data.length, expected: IDENTIFY_LENGTH });
  }
  const word83 = data.readUInt16LE(83 * 2);
  return {
    sectors: identifySectors(data),
    lba48: (word83 & IDENTIFY_WORD83_LBA48) !== 0,
    flushExt: (word83 & IDENTIFY_WORD83_FLUSH_EXT) !== 0,
    model: identifyString(data, 27, 40),
    serial: identifyString(data, 10, 20),
    firmware: identifyString(data, 23, 8),
    data: Buffer.from(data.subarray(0, IDENTIFY_LENGTH)),
  };
}
