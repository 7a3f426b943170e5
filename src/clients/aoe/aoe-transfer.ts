/**
 * The owners of requests: a Transfer is one read or write call split into ATA commands of at
 * most the target's sectors per frame, made lazily as the window opens (a CommandSource) and
 * settled when the last answer is in; a SingleRequest is one command (IDENTIFY, FLUSH, Query
 * Config, mask and reserve lists) settled with its answer frame. Created by AoeInitiator.
 */
import { DisklessError } from '../../errors/index.js';
import { AoeCommand, AoeFlag } from '../../wire/aoe/aoe-header.js';
import { AOE_ARG_OFFSET, AOE_ATA_DATA_OFFSET, AOE_OFFSET } from '../../wire/aoe/aoe-frame.js';
import { AtaFlag, AtaOpcode, AtaStatus, SECTOR_SIZE } from '../../wire/aoe/ata-command.js';
import { aoeAnswerError, ataAnswerError, type AnswerContext } from './aoe-answer-errors.js';
import type { CommandSource } from './aoe-command-window.js';
import type { AoeRequest, AoeRequestFrame, RequestOwner } from './aoe-request.js';

/** LBA3's high nibble in a non-extended command: LBA mode (0x40) and the obsolete 0xa0 bits, as the Linux aoe driver sends. */
const LBA28_DEVICE_BITS = 0xe0 * 2 ** 24;

/** Where a transfer goes, fixed once the target is known. */
export interface TransferTarget {
  readonly mac: Buffer;
  readonly shelf: number;
  readonly slot: number;
  /** Use READ/WRITE SECTORS EXT with all 48 LBA bits (the target's IDENTIFY says it has LBA48). */
  readonly lba48: boolean;
  /** Most sectors in one command. */
  readonly sectorsPerCommand: number;
}

/** The AoE header fields of an answer frame, for errors. */
function context(request: AoeRequest, frame: Buffer | undefined, what: string): AnswerContext {
  return {
    shelf: frame ? frame.readUInt16BE(AOE_OFFSET + 2) : request.shelf,
    slot: frame ? frame[AOE_OFFSET + 4]! : request.slot,
    tag: frame ? frame.readUInt32BE(AOE_OFFSET + 6) : -1,
    what,
  };
}

/** Throws the error an answer carries: the E flag, or for ATA a Status with ERR/DF. */
export function checkAnswer(request: AoeRequest, frame: Buffer, what: () => string): void {
  // the common case (no error) builds no message: this runs once per answered command
  const flags = frame[AOE_OFFSET]! & 0x0f;
  if ((flags & AoeFlag.error) !== 0) throw aoeAnswerError({ flags, error: frame[AOE_OFFSET + 1]! }, context(request, frame, what()))!;
  if (request.command !== AoeCommand.ata) return;
  if (frame.length < AOE_ATA_DATA_OFFSET) {
    throw new DisklessError('AOE_BAD_RESPONSE', `AoE answer to ${what()}: ${frame.length} bytes, need ${AOE_ATA_DATA_OFFSET} for the ATA header`, { length: frame.length });
  }
  const status = frame[AOE_ARG_OFFSET + 3]!;
  if ((status & (AtaStatus.error | AtaStatus.deviceFault)) !== 0) throw ataAnswerError(status, frame[AOE_ARG_OFFSET + 1]!, context(request, frame, what()))!;
}

/** Describes an ATA request for messages: "READ SECTORS EXT at LBA 2048 (17 sectors)". */
export function describeAta(request: AoeRequest): string {
  const a = request.ata;
  if (!a) return ({ [AoeCommand.queryConfig]: 'Query Config', [AoeCommand.macMaskList]: 'Mac Mask List', [AoeCommand.reserveRelease]: 'Reserve/Release' } as Record<number, string>)[request.command] ?? `AoE command ${request.command}`;
  const names: Record<number, string> = {
    [AtaOpcode.readSectors]: 'READ SECTORS',
    [AtaOpcode.readSectorsExt]: 'READ SECTORS EXT',
    [AtaOpcode.writeSectors]: 'WRITE SECTORS',
    [AtaOpcode.writeSectorsExt]: 'WRITE SECTORS EXT',
    [AtaOpcode.identifyDevice]: 'IDENTIFY DEVICE',
    [AtaOpcode.flushCache]: 'FLUSH CACHE',
    [AtaOpcode.flushCacheExt]: 'FLUSH CACHE EXT',
    [AtaOpcode.checkPowerMode]: 'CHECK POWER MODE',
  };
  const name = names[a.command] ?? `ATA command 0x${a.command.toString(16)}`;
  const lba = (a.flags & AtaFlag.extended) !== 0 ? a.lba : a.lba % 0x10000000;
  return a.sectorCount > 0 && a.command !== AtaOpcode.identifyDevice ? `${name} at LBA ${lba} (${a.sectorCount} sectors)` : name;
}

/**
 * One read or write of `buffer.length / 512` sectors at `lba`: a source of commands for the
 * window and the owner of their answers. Reads copy each answer's data into `buffer` at the
 * command's offset; writes send views of `buffer`. Resolves once every command is answered;
 * rejects with the first error (the commands not yet sent are withdrawn, answers to the ones
 * in flight are dropped).
 */
export class Transfer implements CommandSource<AoeRequest>, RequestOwner {
  settled = false;
  private readonly sectors: number;
  private issued = 0;
  private outstanding = 0;
  readonly done: Promise<void>;
  private resolve!: () => void;
  private reject!: (err: Error) => void;

  constructor(
    private readonly target: TransferTarget,
    private readonly lba: number,
    private readonly buffer: Buffer,
    private readonly write: boolean,
  ) {
    this.sectors = buffer.length / SECTOR_SIZE;
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  next(): AoeRequest | undefined {
    if (this.settled || this.issued >= this.sectors) return undefined;
    const t = this.target;
    const count = Math.min(t.sectorsPerCommand, this.sectors - this.issued);
    const lba = this.lba + this.issued;
    const offset = this.issued * SECTOR_SIZE;
    this.issued += count;
    this.outstanding++;
    const command = t.lba48
      ? this.write
        ? AtaOpcode.writeSectorsExt
        : AtaOpcode.readSectorsExt
      : this.write
        ? AtaOpcode.writeSectors
        : AtaOpcode.readSectors;
    return {
      owner: this,
      destination: t.mac,
      shelf: t.shelf,
      slot: t.slot,
      command: AoeCommand.ata,
      offset,
      ata: {
        flags: (t.lba48 ? AtaFlag.extended : 0) | (this.write ? AtaFlag.write : 0),
        feature: 0,
        sectorCount: count,
        command,
        lba: t.lba48 ? lba : lba + LBA28_DEVICE_BITS,
        ...(this.write ? { data: this.buffer.subarray(offset, offset + count * SECTOR_SIZE) } : {}),
      },
    };
  }

  answer(request: AoeRequest, frame: Buffer): void {
    checkAnswer(request, frame, () => describeAta(request));
    if (!this.write) {
      const bytes = request.ata!.sectorCount * SECTOR_SIZE;
      if (frame.length - AOE_ATA_DATA_OFFSET < bytes) {
        throw new DisklessError('AOE_BAD_RESPONSE', `AoE answer to ${describeAta(request)}: ${frame.length - AOE_ATA_DATA_OFFSET} data bytes, asked for ${bytes}`, {
          length: frame.length - AOE_ATA_DATA_OFFSET,
          expected: bytes,
        });
      }
      frame.copy(this.buffer, request.offset, AOE_ATA_DATA_OFFSET, AOE_ATA_DATA_OFFSET + bytes);
    }
    this.outstanding--;
    if (this.outstanding === 0 && this.issued >= this.sectors) {
      this.settled = true;
      this.resolve();
    }
  }

  fail(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(err);
  }
}

/** One request whose answer frame is the result; `checked` requests throw the answer's E flag or ATA error instead. */
export class SingleRequest implements CommandSource<AoeRequest>, RequestOwner {
  settled = false;
  private sent = false;
  readonly request: AoeRequest;
  readonly done: Promise<Buffer>;
  private resolve!: (frame: Buffer) => void;
  private reject!: (err: Error) => void;

  constructor(
    request: AoeRequestFrame,
    private readonly checked: boolean,
  ) {
    this.request = { ...request, owner: this, offset: 0 };
    this.done = new Promise<Buffer>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  next(): AoeRequest | undefined {
    if (this.sent || this.settled) return undefined;
    this.sent = true;
    return this.request;
  }

  answer(request: AoeRequest, frame: Buffer): void {
    if (this.checked) checkAnswer(request, frame, () => describeAta(request));
    this.settled = true;
    this.resolve(frame);
  }

  fail(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(err);
  }
}
