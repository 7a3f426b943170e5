/**
 * What an AoE answer says went wrong, as DisklessErrors: the E flag with its AoE error code
 * (AoE r11 §2.4) and a failed ATA command (Status ERR or DF, with the Error register's bits
 * named). Pure: AoeInitiator calls these on every answer it matches to a request.
 */
import { DisklessError } from '../../errors/index.js';
import { AoeError, AoeFlag, type AoeHeader } from '../../wire/aoe/aoe-header.js';
import { AtaErrorBit, AtaStatus } from '../../wire/aoe/ata-command.js';

/** The AoE r11 §2.4 name of an Error field value ("unrecognizedCommand"), or "error N" for one the spec does not define. */
export function aoeErrorName(code: number): string {
  for (const [name, value] of Object.entries(AoeError)) if (value === code) return name;
  return `error ${code}`;
}

/** The Error register bits set in `error`, by their ATA names (IDNF, ABRT, UNC), low bits others as "bitN". */
export function ataErrorBits(error: number): string[] {
  const names: Record<number, string> = { [AtaErrorBit.uncorrectable]: 'UNC', [AtaErrorBit.idNotFound]: 'IDNF', [AtaErrorBit.aborted]: 'ABRT' };
  const bits: string[] = [];
  for (let bit = 0x80; bit > 0; bit >>= 1) if ((error & bit) !== 0) bits.push(names[bit] ?? `bit${Math.log2(bit)}`);
  return bits;
}

/** Where an answer came from, for the error data and message. */
export interface AnswerContext {
  readonly shelf: number;
  readonly slot: number;
  readonly tag: number;
  /** What was asked, e.g. "READ SECTORS EXT at LBA 2048 (17 sectors)". */
  readonly what: string;
}

/** AOE_ERROR_RESPONSE when `header` has the E flag, else undefined. */
export function aoeAnswerError(header: Pick<AoeHeader, 'flags' | 'error'>, context: AnswerContext): DisklessError | undefined {
  if ((header.flags & AoeFlag.error) === 0) return undefined;
  const name = aoeErrorName(header.error);
  return new DisklessError('AOE_ERROR_RESPONSE', `AoE target e${context.shelf}.${context.slot} refused ${context.what}: AoE error ${header.error} (${name})`, {
    ...context,
    aoeError: header.error,
    aoeErrorName: name,
  });
}

/** AOE_ERROR_RESPONSE when the ATA Status has ERR or DF set (the command failed on the device), else undefined. */
export function ataAnswerError(status: number, error: number, context: AnswerContext): DisklessError | undefined {
  if ((status & (AtaStatus.error | AtaStatus.deviceFault)) === 0) return undefined;
  const bits = ataErrorBits(error);
  const hex = (n: number) => `0x${n.toString(16).padStart(2, '0')}`;
  return new DisklessError(
    'AOE_ERROR_RESPONSE',
    `AoE target e${context.shelf}.${context.slot} failed ${context.what}: ATA status ${hex(status)}${(status & AtaStatus.deviceFault) !== 0 ? ' (device fault)' : ''}, error ${hex(error)}${bits.length ? ` (${bits.join(' ')})` : ''}`,
    { ...context, status, error, errorBits: bits },
  );
}
