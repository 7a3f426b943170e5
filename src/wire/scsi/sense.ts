/**
 * Sense data (SPC-4 §4.5): fixed format (response code 70h) and descriptor format (72h)
 * builders, a decoder for tests and logs, and the CHECK CONDITION error the command layer
 * throws so one catch turns any failure into sense.
 */
import { DisklessError } from '../../errors/index.js';
import type { AscPair } from './scsi-constants.js';

/** Where in the CDB (or parameter list) the bad field is: the SENSE-KEY SPECIFIC field (SPC-4 §4.5.2.4.2). */
export interface FieldPointer {
  readonly inCdb: boolean;
  readonly byte: number;
  /** Bit 0-7, or undefined when the whole byte is at fault. */
  readonly bit?: number;
}

/** The facts sense data carries. */
export interface Sense {
  readonly key: number;
  readonly asc: number;
  readonly ascq: number;
  /** INFORMATION field (e.g. the first bad LBA), when valid. */
  readonly information?: bigint;
  readonly field?: FieldPointer;
}

/** Fixed-format sense is 18 bytes (additional sense length 10). */
export const FIXED_SENSE_LENGTH = 18;
const RESPONSE_CURRENT_FIXED = 0x70;
const RESPONSE_CURRENT_DESCRIPTOR = 0x72;
const VALID = 0x80;
const SKSV = 0x80;

/** Builds fixed-format sense data (SPC-4 §4.5.3). */
export function encodeFixedSense(s: Sense): Buffer {
  const b = Buffer.alloc(FIXED_SENSE_LENGTH);
  b[0] = RESPONSE_CURRENT_FIXED | (s.information !== undefined && s.information <= 0xffffffffn ? VALID : 0);
  b[2] = s.key & 0x0f;
  if (s.information !== undefined && s.information <= 0xffffffffn) b.writeUInt32BE(Number(s.information), 3);
  b[7] = FIXED_SENSE_LENGTH - 8;
  b[12] = s.asc;
  b[13] = s.ascq;
  if (s.field) writeFieldPointer(b, 15, s.field);
  return b;
}

/** Builds descriptor-format sense data (SPC-4 §4.5.2) with information and sense-key-specific descriptors as needed. */
export function encodeDescriptorSense(s: Sense): Buffer {
  const descriptors: Buffer[] = [];
  if (s.information !== undefined) {
    const d = Buffer.alloc(12);
    d[0] = 0x00; // information descriptor (§4.5.2.2)
    d[1] = 0x0a;
    d[2] = VALID;
    d.writeBigUInt64BE(s.information, 4);
    descriptors.push(d);
  }
  if (s.field) {
    const d = Buffer.alloc(8);
    d[0] = 0x02; // sense key specific descriptor (§4.5.2.4)
    d[1] = 0x06;
    writeFieldPointer(d, 4, s.field);
    descriptors.push(d);
  }
  const body = Buffer.concat(descriptors);
  const head = Buffer.alloc(8);
  head[0] = RESPONSE_CURRENT_DESCRIPTOR;
  head[1] = s.key & 0x0f;
  head[2] = s.asc;
  head[3] = s.ascq;
  head[7] = body.length;
  return Buffer.concat([head, body]);
}

function writeFieldPointer(b: Buffer, off: number, f: FieldPointer): void {
  b[off] = SKSV | (f.inCdb ? 0x40 : 0) | (f.bit !== undefined ? 0x08 | (f.bit & 7) : 0);
  b.writeUInt16BE(f.byte & 0xffff, off + 1);
}

/** Reads fixed or descriptor sense back (tests, logs); null when the response code is not 70h-73h or it is too short. */
export function decodeSense(b: Buffer): Sense | null {
  if (b.length < 8) return null;
  const code = b[0]! & 0x7f;
  if (code === 0x70 || code === 0x71) {
    if (b.length < 14) return null;
    return { key: b[2]! & 0x0f, asc: b[12]!, ascq: b[13]!, ...(b[0]! & VALID ? { information: BigInt(b.readUInt32BE(3)) } : {}) };
  }
  if (code === 0x72 || code === 0x73) return { key: b[1]! & 0x0f, asc: b[2]!, ascq: b[3]! };
  return null;
}

/**
 * The error every SCSI command path throws to end a command in CHECK CONDITION; the target
 * catches it (isDisklessError(e, 'SCSI_CHECK_CONDITION')) and sends `e.data.sense`.
 */
export function checkCondition(key: number, code: AscPair, message: string, extra: { field?: FieldPointer; information?: bigint; [k: string]: unknown } = {}): DisklessError {
  const { field, information, ...rest } = extra;
  const sense: Sense = { key, asc: code.asc, ascq: code.ascq, ...(field ? { field } : {}), ...(information !== undefined ? { information } : {}) };
  return new DisklessError('SCSI_CHECK_CONDITION', message, { sense, ...rest });
}

/** The sense inside a SCSI_CHECK_CONDITION error. */
export function senseOf(err: DisklessError): Sense {
  return err.data.sense as Sense;
}
