import { AtaErrorBit, AtaFlag, AtaOpcode, AtaStatus, SECTOR_SIZE, effectiveLba, type AtaArg } from '../../wire/aoe/ata-command.js';

/**
 * What an ATA command asks of a target, decided before any I/O (pure): a read or write of a
 * sector range, IDENTIFY, FLUSH, CHECK POWER MODE, or an answer that needs no device at all
 * (an ATA abort, an address past the end, or an AoE "bad argument" for a request that cannot
 * be carried: more sectors than a frame holds, or a write whose data is short).
 */
export type AtaPlan =
  | { readonly kind: 'read'; readonly lba: number; readonly sectors: number }
  | { readonly kind: 'write'; readonly lba: number; readonly sectors: number; readonly data: Buffer }
  | { readonly kind: 'identify' }
  | { readonly kind: 'flush' }
  | { readonly kind: 'checkPower' }
  /** Answer with this ATA status and error, no data; `lba` is the failing address when there is one. */
  | { readonly kind: 'ataError'; readonly status: number; readonly error: number; readonly lba: number }
  /** Answer with AoE error 2 (bad argument). */
  | { readonly kind: 'badArgument'; readonly why: string };

export interface AtaLimits {
  /** Sectors one frame may carry (Query Config's sector count). */
  readonly maxSectors: number;
  /** Capacity in 512-byte sectors. */
  readonly sectors: number;
  readonly readOnly: boolean;
}

export const ATA_OK_STATUS = AtaStatus.ready;
export const ATA_ERROR_STATUS = AtaStatus.ready | AtaStatus.error;

export function planAta(arg: AtaArg, limits: AtaLimits): AtaPlan {
  const op = arg.commandOrStatus;
  const extended = (arg.flags & AtaFlag.extended) !== 0;
  switch (op) {
    case AtaOpcode.identifyDevice:
      return { kind: 'identify' };
    case AtaOpcode.flushCache:
    case AtaOpcode.flushCacheExt:
      return { kind: 'flush' };
    case AtaOpcode.checkPowerMode:
      return { kind: 'checkPower' };
    case AtaOpcode.readSectors:
    case AtaOpcode.readSectorsExt:
    case AtaOpcode.writeSectors:
    case AtaOpcode.writeSectorsExt:
      break;
    default:
      return { kind: 'ataError', status: ATA_ERROR_STATUS, error: AtaErrorBit.aborted, lba: arg.lba };
  }
  const isWrite = op === AtaOpcode.writeSectors || op === AtaOpcode.writeSectorsExt;
  const isExtOp = op === AtaOpcode.readSectorsExt || op === AtaOpcode.writeSectorsExt;
  // The E flag and the opcode must agree: an LBA48 opcode without E (or the reverse) would
  // address a different sector than the initiator meant.
  if (isExtOp !== extended) return { kind: 'badArgument', why: `ATA command 0x${op.toString(16)} with the extended flag ${extended ? 'set' : 'clear'}` };
  if (isWrite !== ((arg.flags & AtaFlag.write) !== 0)) return { kind: 'badArgument', why: `ATA command 0x${op.toString(16)} with the write flag ${isWrite ? 'clear' : 'set'}` };
  const sectors = arg.sectorCount;
  if (sectors > limits.maxSectors) return { kind: 'badArgument', why: `${sectors} sectors in one frame, at most ${limits.maxSectors}` };
  const lba = effectiveLba(arg);
  if (lba + sectors > limits.sectors) return { kind: 'ataError', status: ATA_ERROR_STATUS, error: AtaErrorBit.idNotFound, lba };
  if (!isWrite) return { kind: 'read', lba, sectors };
  if (arg.data.length < sectors * SECTOR_SIZE) return { kind: 'badArgument', why: `write of ${sectors} sectors carries ${arg.data.length} bytes` };
  if (limits.readOnly) return { kind: 'ataError', status: ATA_ERROR_STATUS, error: AtaErrorBit.aborted, lba };
  return { kind: 'write', lba, sectors, data: arg.data.subarray(0, sectors * SECTOR_SIZE) };
}
