/**
 * MODE SELECT (6)/(10) parameter list decoding (SPC-4 §6.9, §7.5): header, block
 * descriptors and page_0 mode pages, checked against the unit's current values: a byte may
 * differ only in bits MODE SENSE reports as changeable. Pure.
 */
import { PageControl } from './scsi-constants.js';
import { modePage, type UnitGeometry } from './scsi-data.js';

/** What a valid parameter list changes. */
export interface ModeChange {
  readonly descriptorSense?: boolean;
}

/**
 * Decodes a MODE SELECT parameter list. Returns the change, or the byte offset (in the
 * parameter list) of the first field that cannot be honoured, for INVALID FIELD IN
 * PARAMETER LIST with a field pointer.
 */
export function parseModeSelect(p: Buffer, ten: boolean, geo: UnitGeometry, descriptorSense: boolean): ModeChange | number {
  const headerLength = ten ? 8 : 4;
  if (p.length < headerLength) return 0;
  const bdl = ten ? p.readUInt16BE(6) : p[3]!;
  // Block descriptors may restate the capacity and block length, not change them.
  const descLength = ten && p[4]! & 0x01 ? 16 : 8;
  if (bdl % descLength !== 0 || headerLength + bdl > p.length) return ten ? 6 : 3;
  for (let off = headerLength; off < headerLength + bdl; off += descLength) {
    const blockLength = descLength === 16 ? p.readUInt32BE(off + 12) : p.readUIntBE(off + 5, 3);
    if (blockLength !== geo.blockSize) return descLength === 16 ? off + 12 : off + 5;
  }
  let change: { descriptorSense?: boolean } = {};
  let off = headerLength + bdl;
  while (off < p.length) {
    if (off + 2 > p.length) return off;
    const code = p[off]! & 0x3f;
    if (p[off]! & 0x40) return off; // SPF: no subpages here
    const len = p[off + 1]! + 2;
    if (off + len > p.length) return off + 1;
    const current = modePage(code, geo, PageControl.current, { descriptorSense });
    const mask = modePage(code, geo, PageControl.changeable);
    if (!current || !mask) return off;
    if (len !== current.length) return off + 1;
    for (let i = 2; i < len; i++) {
      if ((p[off + i]! ^ current[i]!) & ~mask[i]! & 0xff) return off + i;
    }
    if (code === current[0]) {
      const d = (p[off + 2]! & 0x04) !== 0;
      if (code === 0x0a) change = { ...change, descriptorSense: d };
    }
    off += len;
  }
  return change;
}
