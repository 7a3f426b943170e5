/**
 * The identity a target's logical unit reports in INQUIRY and its VPD pages: fixed vendor,
 * product and revision strings, plus a serial and NAA designator derived from the target name.
 */
import { createHash } from 'node:crypto';
import type { UnitIdentity } from '../../wire/scsi/scsi-data.js';

/** Vendor/product strings of the target. */
export const UNIT_VENDOR = 'DISKLESS';
export const UNIT_PRODUCT = 'VIRTUAL-DISK';
export const UNIT_REVISION = '0001';

/** Builds the stable identity of a target's LUN 0 from its name (and an optional serial). */
export function unitIdentity(targetName: string, portalGroupTag: number, serial?: string): UnitIdentity {
  const digest = createHash('sha256').update(serial ?? targetName).digest();
  // NAA 3 (locally assigned, SPC-4 §7.8.6.6.3): 4-bit NAA then 60 bits of the digest.
  const naa = (3n << 60n) | (digest.readBigUInt64BE(0) & ((1n << 60n) - 1n));
  return {
    vendor: UNIT_VENDOR,
    product: UNIT_PRODUCT,
    revision: UNIT_REVISION,
    serial: serial ?? digest.subarray(8, 16).toString('hex'),
    naa,
    targetName,
    portalGroupTag,
    relativeTargetPort: 1,
  };
}
