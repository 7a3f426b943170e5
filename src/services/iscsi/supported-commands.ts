/**
 * The commands this target implements, with their CDB usage data, and the REPORT SUPPORTED
 * OPERATION CODES parameter data built from them (SPC-4 §6.35): all commands (reporting
 * options 000b), one command without (001b) or with a service action (010b, 011b), with
 * command timeouts descriptors when RCTD is set. The table is the single source: a command
 * missing here is reported unsupported.
 */
import type { BlockDevice } from '../../store/block-device.js';

export interface SupportedCommand {
  readonly opcode: number;
  readonly serviceAction?: number;
  /** CDB USAGE DATA: the CDB length and, per byte, the bits the device server looks at (byte 0 is the opcode). */
  readonly usage: readonly number[];
  /** Present only when the device can do it (UNMAP and GET LBA STATUS need `capabilities.unmap`). */
  readonly available?: (device: BlockDevice) => boolean;
}

const C = 0x04; // CONTROL byte: NACA is checked
const rw10 = (op: number, flags: number) => [op, flags, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, C];
const rw12 = (op: number, flags: number) => [op, flags, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, C];
const rw16 = (op: number, flags: number) => [op, flags, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, C];

export const SUPPORTED_COMMANDS: readonly SupportedCommand[] = [
  { opcode: 0x00, usage: [0x00, 0, 0, 0, 0, C] }, // TEST UNIT READY
  { opcode: 0x03, usage: [0x03, 0x01, 0, 0, 0xff, C] }, // REQUEST SENSE
  { opcode: 0x08, usage: [0x08, 0x1f, 0xff, 0xff, 0xff, C] }, // READ (6)
  { opcode: 0x0a, usage: [0x0a, 0x1f, 0xff, 0xff, 0xff, C] }, // WRITE (6)
  { opcode: 0x12, usage: [0x12, 0x01, 0xff, 0xff, 0xff, C] }, // INQUIRY
  { opcode: 0x15, usage: [0x15, 0x11, 0, 0, 0xff, C] }, // MODE SELECT (6)
  { opcode: 0x16, usage: [0x16, 0, 0, 0, 0, C] }, // RESERVE (6)
  { opcode: 0x17, usage: [0x17, 0, 0, 0, 0, C] }, // RELEASE (6)
  { opcode: 0x1a, usage: [0x1a, 0x08, 0xff, 0xff, 0xff, C] }, // MODE SENSE (6)
  { opcode: 0x1b, usage: [0x1b, 0x01, 0, 0, 0xf7, C] }, // START STOP UNIT
  { opcode: 0x1e, usage: [0x1e, 0, 0, 0, 0x03, C] }, // PREVENT ALLOW MEDIUM REMOVAL
  { opcode: 0x25, usage: [0x25, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x01, C] }, // READ CAPACITY (10)
  { opcode: 0x28, usage: rw10(0x28, 0xf8) }, // READ (10)
  { opcode: 0x2a, usage: rw10(0x2a, 0xf8) }, // WRITE (10)
  { opcode: 0x2e, usage: rw10(0x2e, 0xf2) }, // WRITE AND VERIFY (10)
  { opcode: 0x2f, usage: rw10(0x2f, 0xf6) }, // VERIFY (10)
  { opcode: 0x34, usage: rw10(0x34, 0x02) }, // PRE-FETCH (10)
  { opcode: 0x35, usage: rw10(0x35, 0x02) }, // SYNCHRONIZE CACHE (10)
  { opcode: 0x41, usage: rw10(0x41, 0xf8) }, // WRITE SAME (10)
  { opcode: 0x42, usage: [0x42, 0x01, 0, 0, 0, 0, 0, 0xff, 0xff, C], available: (d) => d.capabilities.unmap }, // UNMAP
  { opcode: 0x55, usage: [0x55, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, C] }, // MODE SELECT (10)
  { opcode: 0x56, usage: [0x56, 0, 0, 0, 0, 0, 0, 0, 0, C] }, // RESERVE (10)
  { opcode: 0x57, usage: [0x57, 0, 0, 0, 0, 0, 0, 0, 0, C] }, // RELEASE (10)
  { opcode: 0x5a, usage: [0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, C] }, // MODE SENSE (10)
  ...[0, 1, 2, 3].map((sa) => ({ opcode: 0x5e, serviceAction: sa, usage: [0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, C] })), // PERSISTENT RESERVE IN
  ...[0, 1, 2, 3, 4, 5, 6].map((sa) => ({ opcode: 0x5f, serviceAction: sa, usage: [0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, C] })), // PERSISTENT RESERVE OUT
  { opcode: 0x88, usage: rw16(0x88, 0xf8) }, // READ (16)
  { opcode: 0x89, usage: [0x89, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0xff, 0, C] }, // COMPARE AND WRITE
  { opcode: 0x8a, usage: rw16(0x8a, 0xf8) }, // WRITE (16)
  { opcode: 0x8b, usage: rw16(0x8b, 0xf8) }, // ORWRITE (16)
  { opcode: 0x8e, usage: rw16(0x8e, 0xf2) }, // WRITE AND VERIFY (16)
  { opcode: 0x8f, usage: rw16(0x8f, 0xf6) }, // VERIFY (16)
  { opcode: 0x90, usage: rw16(0x90, 0x02) }, // PRE-FETCH (16)
  { opcode: 0x91, usage: rw16(0x91, 0x02) }, // SYNCHRONIZE CACHE (16)
  { opcode: 0x93, usage: rw16(0x93, 0xf9) }, // WRITE SAME (16)
  { opcode: 0x9e, serviceAction: 0x10, usage: [0x9e, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, C] }, // READ CAPACITY (16)
  { opcode: 0x9e, serviceAction: 0x12, usage: [0x9e, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, C], available: (d) => d.capabilities.unmap }, // GET LBA STATUS
  { opcode: 0xa0, usage: [0xa0, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, C] }, // REPORT LUNS
  { opcode: 0xa3, serviceAction: 0x0c, usage: [0xa3, 0x1f, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, C] }, // REPORT SUPPORTED OPERATION CODES
  { opcode: 0xa8, usage: rw12(0xa8, 0xf8) }, // READ (12)
  { opcode: 0xaa, usage: rw12(0xaa, 0xf8) }, // WRITE (12)
  { opcode: 0xae, usage: rw12(0xae, 0xf2) }, // WRITE AND VERIFY (12)
  { opcode: 0xaf, usage: rw12(0xaf, 0xf6) }, // VERIFY (12)
];

/** Nominal and recommended command timeouts reported with RCTD, in seconds (0 = not specified). */
const RECOMMENDED_TIMEOUT_S = 30;

function timeoutsDescriptor(): Buffer {
  const d = Buffer.alloc(12);
  d.writeUInt16BE(0x0a, 0); // DESCRIPTOR LENGTH
  d.writeUInt32BE(0, 4); // NOMINAL COMMAND PROCESSING TIMEOUT: not specified
  d.writeUInt32BE(RECOMMENDED_TIMEOUT_S, 8);
  return d;
}

/**
 * REPORT SUPPORTED OPERATION CODES parameter data for `commands`, or null when the request
 * itself is invalid (reporting option 001b for an opcode that has service actions, 010b for
 * one that has none): the caller answers INVALID FIELD IN CDB.
 */
export function reportSupportedOpcodes(commands: readonly SupportedCommand[], req: { options: number; opcode: number; serviceAction: number; timeouts: boolean }): Buffer | null {
  if (req.options === 0) {
    const descriptors = commands.map((c) => {
      const d = Buffer.alloc(8);
      d[0] = c.opcode;
      if (c.serviceAction !== undefined) d.writeUInt16BE(c.serviceAction, 2);
      d[5] = (req.timeouts ? 0x02 : 0) | (c.serviceAction !== undefined ? 0x01 : 0); // CTDP, SERVACTV
      d.writeUInt16BE(c.usage.length, 6);
      return req.timeouts ? Buffer.concat([d, timeoutsDescriptor()]) : d;
    });
    const body = Buffer.concat(descriptors);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length, 0);
    return Buffer.concat([head, body]);
  }
  const withSa = commands.some((c) => c.opcode === req.opcode && c.serviceAction !== undefined);
  if (req.options === 1 && withSa) return null;
  if (req.options === 2 && !withSa && commands.some((c) => c.opcode === req.opcode)) return null;
  const useSa = req.options === 2 || (req.options === 3 && withSa);
  const match = commands.find((c) => c.opcode === req.opcode && (useSa ? c.serviceAction === req.serviceAction : c.serviceAction === undefined));
  const head = Buffer.alloc(4);
  head[1] = (req.timeouts ? 0x80 : 0) | (match ? 0x03 : 0x01); // CTDP, SUPPORT: 011b supported per standard / 001b not supported
  if (!match) return req.timeouts ? Buffer.concat([head, timeoutsDescriptor()]) : head;
  head.writeUInt16BE(match.usage.length, 2);
  const parts: Buffer[] = [head, Buffer.from(match.usage)];
  if (req.timeouts) parts.push(timeoutsDescriptor());
  return Buffer.concat(parts);
}
