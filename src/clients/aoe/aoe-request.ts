/**
 * One AoE request as the initiator keeps it while it waits (what to send again on a timeout,
 * whom the answer must come from, whom to tell), plus the two pure steps around the socket:
 * writing the request into a frame and deciding whether a received frame answers it.
 * Used by AoeInitiator for every frame it sends and receives.
 */
import { BROADCAST_MAC } from '../../wire/ethernet/ethernet-frame.js';
import { AOE_BROADCAST_SHELF, AOE_BROADCAST_SLOT, AOE_VERSION, AoeFlag } from '../../wire/aoe/aoe-header.js';
import { AOE_ARG_OFFSET, AOE_ATA_DATA_OFFSET, AOE_OFFSET, MIN_FRAME_LENGTH, writeFrameHeader } from '../../wire/aoe/aoe-frame.js';
import { writeAtaHeader } from '../../wire/aoe/ata-command.js';

/** Who waits for a request's answer: one per read/write call or thin command. */
export interface RequestOwner {
  /** True once resolved or rejected: later answers for its requests are dropped. */
  readonly settled: boolean;
  /** The matched answer (a whole frame, the owner's to keep). May throw: the initiator then calls `fail`. */
  answer(request: AoeRequest, frame: Buffer): void;
  fail(err: Error): void;
}

/** The ATA part of a request (AoE r11 §3.1). */
export interface AtaRequestFields {
  readonly flags: number;
  readonly feature: number;
  readonly sectorCount: number;
  readonly command: number;
  /** The six LBA bytes as a number: for a non-extended command including the device-register nibble. */
  readonly lba: number;
  /** Sector data of a write (a view into the caller's buffer: it must not change until the write settles). */
  readonly data?: Buffer;
}

export interface AoeRequest {
  readonly owner: RequestOwner;
  /** The target's MAC, or the broadcast address before it is known. */
  readonly destination: Buffer;
  readonly shelf: number;
  readonly slot: number;
  /** AoeCommand. */
  readonly command: number;
  /** The argument of a non-ATA command (Query Config, Mac Mask List, Reserve/Release). */
  readonly arg?: Buffer;
  readonly ata?: AtaRequestFields;
  /** Byte offset of this request's sectors in its owner's buffer (reads and writes). */
  readonly offset: number;
}

/** What goes on the wire for a request (no owner needed: discovery broadcasts have none). */
export type AoeRequestFrame = Omit<AoeRequest, 'owner' | 'offset'>;

/**
 * Writes `request` under `tag` from `source` into `out` (large enough for the biggest request)
 * and returns the frame's length, zero-padded to the Ethernet minimum. Called for the first
 * try and every retransmission, so a request holds no frame of its own.
 */
export function writeRequestFrame(out: Buffer, source: Buffer, request: AoeRequestFrame, tag: number): number {
  writeFrameHeader(out, request.destination, source, { version: AOE_VERSION, flags: 0, error: 0, shelf: request.shelf, slot: request.slot, command: request.command, tag });
  let length = AOE_ARG_OFFSET;
  if (request.ata) {
    const a = request.ata;
    writeAtaHeader({ flags: a.flags, featureOrError: a.feature, sectorCount: a.sectorCount, commandOrStatus: a.command, lba: a.lba }, out, AOE_ARG_OFFSET);
    length = AOE_ATA_DATA_OFFSET;
    if (a.data) length += a.data.copy(out, length);
  } else if (request.arg) {
    length += request.arg.copy(out, length);
  }
  if (length < MIN_FRAME_LENGTH) {
    out.fill(0, length, MIN_FRAME_LENGTH);
    length = MIN_FRAME_LENGTH;
  }
  return length;
}

/**
 * True when `frame` (whose tag matched) answers `request`: a response (R flag) to the same
 * command, from the MAC it was sent to unless it was broadcast, and from the addressed shelf
 * and slot unless those were the broadcast ones. Anything else is a stale or foreign frame.
 */
export function answersRequest(request: AoeRequestFrame, frame: Buffer): boolean {
  if (frame.length < AOE_ARG_OFFSET) return false;
  if ((frame[AOE_OFFSET]! & AoeFlag.response) === 0) return false;
  if (frame[AOE_OFFSET + 5] !== request.command) return false;
  if (!request.destination.equals(BROADCAST_MAC) && frame.compare(request.destination, 0, 6, 6, 12) !== 0) return false;
  if (request.shelf !== AOE_BROADCAST_SHELF && frame.readUInt16BE(AOE_OFFSET + 2) !== request.shelf) return false;
  if (request.slot !== AOE_BROADCAST_SLOT && frame[AOE_OFFSET + 4] !== request.slot) return false;
  return true;
}
