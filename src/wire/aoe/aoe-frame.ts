import { DisklessError } from '../../errors/index.js';
import { ETHERNET_HEADER_LENGTH, EtherType } from '../ethernet/ethernet-frame.js';
import { AOE_HEADER_LENGTH, AoeCommand, decodeAoeHeader, writeAoeHeader, type AoeHeader } from './aoe-header.js';
import { ATA_HEADER_LENGTH, decodeAtaArg, type AtaArg } from './ata-command.js';
import { decodeMacMaskList, type MacMaskList } from './mac-mask-list.js';
import { decodeQueryConfig, type QueryConfig } from './query-config.js';
import { decodeReserveRelease, type ReserveRelease } from './reserve-release.js';

/**
 * A whole AoE Ethernet frame: untagged Ethernet II header (AoE is not routed and the lab's
 * segments are untagged), the AoE header, then the command's argument. Pure.
 */

/** Offset of the AoE header in a frame. */
export const AOE_OFFSET = ETHERNET_HEADER_LENGTH;
/** Offset of the command argument. */
export const AOE_ARG_OFFSET = ETHERNET_HEADER_LENGTH + AOE_HEADER_LENGTH;
/** Offset of the sector data of an ATA command. */
export const AOE_ATA_DATA_OFFSET = AOE_ARG_OFFSET + ATA_HEADER_LENGTH;
/** Smallest Ethernet frame without FCS: shorter ones are padded with zeros. */
export const MIN_FRAME_LENGTH = 60;

export type AoeBody =
  | { readonly command: typeof AoeCommand.ata; readonly ata: AtaArg }
  | { readonly command: typeof AoeCommand.queryConfig; readonly queryConfig: QueryConfig }
  | { readonly command: typeof AoeCommand.macMaskList; readonly macMaskList: MacMaskList }
  | { readonly command: typeof AoeCommand.reserveRelease; readonly reserveRelease: ReserveRelease };

export interface AoeFrame {
  /** 6 bytes, a view into the frame. */
  readonly destination: Buffer;
  /** 6 bytes, a view into the frame. */
  readonly source: Buffer;
  readonly header: AoeHeader;
  /** The argument bytes after the AoE header (a view). */
  readonly arg: Buffer;
}

/** Decodes the Ethernet and AoE headers of `frame`; the argument stays raw (see `decodeAoeBody`). */
export function decodeAoeFrame(frame: Buffer): AoeFrame {
  if (frame.length < ETHERNET_HEADER_LENGTH) {
    throw new DisklessError('WIRE_TRUNCATED', `cannot decode AoE frame: ${frame.length} bytes, need ${ETHERNET_HEADER_LENGTH} for the Ethernet header`, { layer: 'aoe', length: frame.length });
  }
  const etherType = frame.readUInt16BE(12);
  if (etherType !== EtherType.aoe) {
    throw new DisklessError('WIRE_BAD_FIELD', `cannot decode AoE frame: EtherType 0x${etherType.toString(16).padStart(4, '0')}, need 0x88a2`, { layer: 'aoe', field: 'etherType', value: etherType, allowed: [EtherType.aoe] });
  }
  const payload = frame.subarray(AOE_OFFSET);
  return { destination: frame.subarray(0, 6), source: frame.subarray(6, 12), header: decodeAoeHeader(payload), arg: payload.subarray(AOE_HEADER_LENGTH) };
}

/** Decodes the argument of a message with a known command; undefined for any other command (the caller answers error 1). */
export function decodeAoeBody(command: number, arg: Buffer): AoeBody | undefined {
  switch (command) {
    case AoeCommand.ata:
      return { command, ata: decodeAtaArg(arg) };
    case AoeCommand.queryConfig:
      return { command, queryConfig: decodeQueryConfig(arg) };
    case AoeCommand.macMaskList:
      return { command, macMaskList: decodeMacMaskList(arg) };
    case AoeCommand.reserveRelease:
      return { command, reserveRelease: decodeReserveRelease(arg) };
    default:
      return undefined;
  }
}

/** A frame from `source` to `destination` with `header` and the argument parts, zero-padded to 60 bytes. */
export function encodeAoeFrame(destination: Buffer, source: Buffer, header: AoeHeader, ...arg: Buffer[]): Buffer {
  const argLength = arg.reduce((n, b) => n + b.length, 0);
  const out = Buffer.alloc(Math.max(MIN_FRAME_LENGTH, AOE_ARG_OFFSET + argLength));
  writeFrameHeader(out, destination, source, header);
  let at = AOE_ARG_OFFSET;
  for (const b of arg) at += b.copy(out, at);
  return out;
}

/** Writes the Ethernet and AoE headers into the first 24 bytes of `out`. */
export function writeFrameHeader(out: Buffer, destination: Buffer, source: Buffer, header: AoeHeader): void {
  if (destination.length < 6 || source.length < 6) {
    throw new DisklessError('WIRE_BAD_FIELD', `cannot encode AoE frame: MAC addresses of ${destination.length} and ${source.length} bytes, need 6`, { layer: 'aoe', field: 'mac', value: Math.min(destination.length, source.length), allowed: [6] });
  }
  destination.copy(out, 0, 0, 6);
  source.copy(out, 6, 0, 6);
  out.writeUInt16BE(EtherType.aoe, 12);
  writeAoeHeader(header, out, AOE_OFFSET);
}
