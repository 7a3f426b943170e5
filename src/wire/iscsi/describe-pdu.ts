/**
 * One-line-per-field readable rendering of a PDU, for golden dumps of captured sessions and
 * trace logs. Login and Text data segments are shown as their key=value pairs; other data as
 * length plus the first bytes in hex.
 */
import { IscsiOpcode } from './iscsi-constants.js';
import type { IscsiPdu } from './iscsi-pdu.js';
import { decodeTextKeys } from './text-keys.js';
import { isDisklessError } from '../../errors/index.js';

const NAMES: Record<number, string> = Object.fromEntries(Object.entries(IscsiOpcode).map(([k, v]) => [v, k]));

/** Name of an opcode from `IscsiOpcode`, or `opcode-0xNN`. */
export function opcodeName(op: number): string {
  return NAMES[op] ?? `opcode-0x${op.toString(16)}`;
}

const HEX_FIELDS = new Set(['itt', 'ttt', 'isid', 'referencedTaskTag', 'snackTag']);
const DATA_PREVIEW = 32;

/** Multi-line description: the header fields on the first line, the data segment below. */
export function describePdu(pdu: IscsiPdu): string {
  const fields: string[] = [];
  for (const [k, v] of Object.entries(pdu)) {
    if (k === 'opcode' || k === 'data') continue;
    if (Buffer.isBuffer(v)) {
      if (k === 'ahs' && v.length === 0) continue;
      fields.push(`${k}=${v.toString('hex')}`);
    } else if (typeof v === 'bigint') fields.push(`${k}=0x${v.toString(16).padStart(16, '0')}`);
    else if (typeof v === 'number' && HEX_FIELDS.has(k)) fields.push(`${k}=0x${v.toString(16)}`);
    else fields.push(`${k}=${String(v)}`);
  }
  const lines = [`${opcodeName(pdu.opcode)} ${fields.join(' ')}`];
  if (pdu.data.length > 0) {
    const textual = pdu.opcode === IscsiOpcode.loginRequest || pdu.opcode === IscsiOpcode.loginResponse || pdu.opcode === IscsiOpcode.textRequest || pdu.opcode === IscsiOpcode.textResponse;
    let rendered = false;
    if (textual) {
      try {
        for (const p of decodeTextKeys(pdu.data)) lines.push(`    ${p.key}=${p.value}`);
        rendered = true;
      } catch (err) {
        if (!isDisklessError(err)) throw err;
      }
    }
    if (!rendered) lines.push(`    data ${pdu.data.length} bytes: ${pdu.data.subarray(0, DATA_PREVIEW).toString('hex')}${pdu.data.length > DATA_PREVIEW ? '…' : ''}`);
  }
  return lines.join('\n');
}
