import { DisklessError } from '../../errors/index.js';
import { DhcpOption, DHCP_DEFAULT_MAX_MESSAGE } from './dhcp-constants.js';

/**
 * The option list format of RFC 2132 §2 (code, length, data; Pad 0 and End 255 without a
 * length), shared by the options field, overloaded file/sname fields (RFC 2132 §9.3) and the
 * encapsulated blocks of options 43 and 175. Long options are split into and concatenated from
 * several instances of the same code (RFC 3396). Pure.
 */

/** Decoded options: code → data, concatenated per RFC 3396, in order of first appearance. */
export type DhcpOptions = Map<number, Buffer>;

/** Where an option list was read from; names the field in error messages. */
export type OptionField = 'options' | 'file' | 'sname' | 'option 43' | 'option 175';

/** Largest data length of one option instance (the length byte). */
export const MAX_OPTION_INSTANCE = 255;

/**
 * Reads one option list. Returns every instance in order (Pad skipped, End excluded), not yet
 * concatenated. `requireEnd`: the list must close with End (RFC 2131 §4.1 for the options
 * field; RFC 2132 §9.3 for overloaded file/sname); encapsulated lists may just stop.
 * Throws DHCP_OPTION_OVERRUN when a length runs past `field`, DHCP_MISSING_END.
 */
export function readOptionInstances(field: Buffer, where: OptionField, requireEnd: boolean): Array<[number, Buffer]> {
  const out: Array<[number, Buffer]> = [];
  let i = 0;
  while (i < field.length) {
    const code = field[i]!;
    if (code === DhcpOption.pad) {
      i++;
      continue;
    }
    if (code === DhcpOption.end) return out;
    if (i + 1 >= field.length) {
      throw new DisklessError('DHCP_OPTION_OVERRUN', `cannot decode option ${code} in ${where}: no length byte before the end of the field`, { field: where, option: code, offset: i });
    }
    const len = field[i + 1]!;
    if (i + 2 + len > field.length) {
      throw new DisklessError('DHCP_OPTION_OVERRUN', `cannot decode option ${code} in ${where}: length is ${len}, only ${field.length - i - 2} bytes left`, {
        field: where,
        option: code,
        length: len,
        offset: i,
      });
    }
    out.push([code, field.subarray(i + 2, i + 2 + len)]);
    i += 2 + len;
  }
  if (requireEnd) throw new DisklessError('DHCP_MISSING_END', `cannot decode ${where}: the option list has no End option (255)`, { field: where });
  return out;
}

/** Concatenates instances of the same code in order (RFC 3396 §7). Copies the data. */
export function concatenateInstances(instances: Iterable<[number, Buffer]>, into: DhcpOptions = new Map()): DhcpOptions {
  const parts = new Map<number, Buffer[]>();
  for (const [code, data] of instances) {
    const list = parts.get(code);
    if (list) list.push(data);
    else parts.set(code, [data]);
  }
  for (const [code, list] of parts) {
    const prev = into.get(code);
    into.set(code, Buffer.concat(prev ? [prev, ...list] : list));
  }
  return into;
}

/** Decodes an encapsulated block (options 43 and 175: RFC 2132 §8.4, iPXE dhcp.h) into a map. */
export function decodeEncapsulated(data: Buffer, where: 'option 43' | 'option 175'): DhcpOptions {
  return concatenateInstances(readOptionInstances(data, where, false));
}

/**
 * Encodes options as instances of at most 255 data bytes (RFC 3396 split), no End. Used for
 * encapsulated blocks; `withEnd` appends End (the PXE spec closes option 43 with it).
 */
export function encodeOptionList(options: Iterable<[number, Buffer]>, withEnd = false): Buffer {
  const chunks: Buffer[] = [];
  for (const [code, data] of options) {
    checkCode(code);
    let off = 0;
    do {
      const n = Math.min(MAX_OPTION_INSTANCE, data.length - off);
      chunks.push(Buffer.from([code, n]), data.subarray(off, off + n));
      off += n;
    } while (off < data.length);
  }
  if (withEnd) chunks.push(Buffer.from([DhcpOption.end]));
  return Buffer.concat(chunks);
}

function checkCode(code: number): void {
  if (!Number.isInteger(code) || code <= DhcpOption.pad || code >= DhcpOption.end) {
    throw new DisklessError('DHCP_BAD_OPTION_VALUE', `cannot encode option ${code}: codes 0 (Pad) and 255 (End) carry no data, others are 1-254`, {
      option: code,
      allowed: '1-254',
    });
  }
}

/**
 * Lays options out over areas of the given capacities (bytes each, End excluded), splitting
 * an option across instances (RFC 3396) where an area runs out. Returns the bytes per area,
 * or null when they do not fit. Areas are filled in order, as receivers concatenate them
 * (options, then file, then sname: RFC 3396 §7).
 */
export function layoutOptions(options: ReadonlyArray<[number, Buffer]>, capacities: readonly number[]): Buffer[] | null {
  const areas: Buffer[][] = capacities.map(() => []);
  const used = capacities.map(() => 0);
  let area = 0;
  for (const [code, data] of options) {
    checkCode(code);
    let off = 0;
    let emitted = false;
    while (!emitted || off < data.length) {
      if (area >= capacities.length) return null;
      const space = capacities[area]! - used[area]!;
      const need = data.length === off ? 2 : 3; // header + at least one byte of data
      if (space < need) {
        area++;
        continue;
      }
      const n = Math.min(MAX_OPTION_INSTANCE, space - 2, data.length - off);
      areas[area]!.push(Buffer.from([code, n]), data.subarray(off, off + n));
      used[area]! += 2 + n;
      off += n;
      emitted = true;
    }
  }
  return areas.map((a) => Buffer.concat(a));
}

/** Length rules of the options this project reads (RFC 2132, RFC 3004, RFC 4578). */
interface LengthRule {
  readonly min: number;
  readonly max?: number;
  readonly multiple?: number;
}

const lengthRules: ReadonlyMap<number, LengthRule> = new Map<number, LengthRule>([
  [DhcpOption.subnetMask, { min: 4, max: 4 }],
  [DhcpOption.router, { min: 4, multiple: 4 }],
  [DhcpOption.domainNameServer, { min: 4, multiple: 4 }],
  [DhcpOption.hostName, { min: 1 }],
  [DhcpOption.domainName, { min: 1 }],
  [DhcpOption.broadcastAddress, { min: 4, max: 4 }],
  [DhcpOption.requestedIpAddress, { min: 4, max: 4 }],
  [DhcpOption.leaseTime, { min: 4, max: 4 }],
  [DhcpOption.overload, { min: 1, max: 1 }],
  [DhcpOption.messageType, { min: 1, max: 1 }],
  [DhcpOption.serverIdentifier, { min: 4, max: 4 }],
  [DhcpOption.parameterRequestList, { min: 1 }],
  [DhcpOption.maxMessageSize, { min: 2, max: 2 }],
  [DhcpOption.renewalTime, { min: 4, max: 4 }],
  [DhcpOption.rebindingTime, { min: 4, max: 4 }],
  [DhcpOption.vendorClassIdentifier, { min: 1 }],
  [DhcpOption.clientIdentifier, { min: 2 }],
  [DhcpOption.userClass, { min: 1 }],
  [DhcpOption.clientArch, { min: 2, multiple: 2 }],
  [DhcpOption.clientNdi, { min: 3, max: 3 }],
  [DhcpOption.clientMachineId, { min: 1 }],
]);

/**
 * Checks the length of every option with a rule, after concatenation. Throws
 * DHCP_BAD_OPTION_LENGTH ("cannot decode option 93: length is 1").
 */
export function checkOptionLengths(options: DhcpOptions): void {
  for (const [code, data] of options) {
    const rule = lengthRules.get(code);
    if (!rule) continue;
    const n = data.length;
    const ok = n >= rule.min && (rule.max === undefined || n <= rule.max) && (rule.multiple === undefined || n % rule.multiple === 0);
    if (!ok) {
      const allowed = rule.max === rule.min ? `${rule.min}` : rule.multiple ? `a multiple of ${rule.multiple}, at least ${rule.min}` : `at least ${rule.min}`;
      throw new DisklessError('DHCP_BAD_OPTION_LENGTH', `cannot decode option ${code}: length is ${n}, allowed ${allowed}`, { option: code, length: n, allowed });
    }
  }
  const maxSize = options.get(DhcpOption.maxMessageSize);
  if (maxSize && maxSize.readUInt16BE(0) < DHCP_DEFAULT_MAX_MESSAGE + 28) {
    // RFC 2132 §9.10: the minimum legal value is 576.
    throw new DisklessError('DHCP_BAD_OPTION_VALUE', `cannot decode option 57: maximum message size ${maxSize.readUInt16BE(0)} is below 576`, {
      option: DhcpOption.maxMessageSize,
      value: maxSize.readUInt16BE(0),
      allowed: '576-65535',
    });
  }
}
