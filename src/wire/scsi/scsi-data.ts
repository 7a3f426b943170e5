/**
 * Parameter data the target returns (pure builders): standard INQUIRY and VPD pages
 * 00h/80h/83h/B0h/B1h/B2h (SPC-4 §6.4, §7.8; SBC-3 §6.6), READ CAPACITY 10/16 (SBC-3 §5.15-16),
 * REPORT LUNS (SPC-4 §6.33), MODE SENSE 6/10 with the caching and control pages
 * (SPC-4 §7.5, SBC-3 §6.5). Callers truncate to the allocation length.
 */
import { ModePage, PageControl, PERIPHERAL_DIRECT_ACCESS, VpdPage } from './scsi-constants.js';

/** Who the logical unit says it is. Built once per target by the iSCSI layer. */
export interface UnitIdentity {
  /** T10 vendor identification, up to 8 ASCII characters. */
  readonly vendor: string;
  /** Up to 16 ASCII characters. */
  readonly product: string;
  /** Up to 4 ASCII characters. */
  readonly revision: string;
  /** Unit serial number (VPD 80h), printable ASCII, stable for the volume. */
  readonly serial: string;
  /** 64-bit NAA designator with NAA = 3 (locally assigned) in the top nibble, stable for the volume. */
  readonly naa: bigint;
  /** iSCSI target name (SCSI target device designator, VPD 83h). */
  readonly targetName: string;
  /** Target portal group tag of the port (SCSI name string "<iqn>,t,0x<tpgt>"). */
  readonly portalGroupTag: number;
  /** Relative target port identifier (VPD 83h designator type 4). */
  readonly relativeTargetPort: number;
}

/** What the device geometry pages need. */
export interface UnitGeometry {
  readonly blocks: bigint;
  readonly blockSize: number;
  readonly readOnly: boolean;
  readonly volatileWriteCache: boolean;
  /** Largest READ/WRITE in blocks (VPD B0h). */
  readonly maxTransferBlocks: number;
  /** Physical block size in bytes (READ CAPACITY 16 exponent), a power-of-two multiple of blockSize. */
  readonly physicalBlockSize: number;
  /** Preferred I/O granularity in bytes (VPD B0h OPTIMAL TRANSFER LENGTH GRANULARITY); default physicalBlockSize. */
  readonly ioGranularity?: number;
  /** Largest COMPARE AND WRITE in blocks (VPD B0h byte 5, at most 255); 0 = not supported. */
  readonly maxCompareAndWriteBlocks?: number;
  /** Largest WRITE SAME in blocks (VPD B0h); WRITE SAME of 0 blocks is refused (WSNZ). */
  readonly maxWriteSameBlocks?: number;
  /**
   * Logical block provisioning (SBC-3 §4.7): present when the unit is thin provisioned (UNMAP,
   * WRITE SAME with UNMAP, GET LBA STATUS; unmapped blocks read as zeros). READ CAPACITY 16
   * then says LBPME=1 LBPRZ=1, VPD B2h exists and VPD B0h carries these limits. Absent: fully
   * provisioned.
   */
  readonly provisioning?: ProvisioningLimits;
}

/** The unmap limits of a thin-provisioned unit (VPD B0h). */
export interface ProvisioningLimits {
  /** MAXIMUM UNMAP LBA COUNT: blocks one UNMAP may name in total. */
  readonly maxUnmapBlocks: number;
  /** MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT. */
  readonly maxUnmapDescriptors: number;
  /** OPTIMAL UNMAP GRANULARITY in blocks (the backing store frees whole multiples of it, aligned to LBA 0). */
  readonly unmapGranularity: number;
}

/** SPC-4 version descriptors (SPC-4 §6.4.2 table 142): SAM-5, iSCSI (no version), SPC-4, SBC-3. */
const VERSION_DESCRIPTORS = [0x00a0, 0x0960, 0x0460, 0x04c0];
const STANDARD_INQUIRY_LENGTH = 96;
/** The VPD pages this target implements, in ascending order (SPC-4 §7.8.13); B2h only on thin-provisioned units. */
export const SUPPORTED_VPD_PAGES = [VpdPage.supportedPages, VpdPage.unitSerialNumber, VpdPage.deviceIdentification, VpdPage.blockLimits, VpdPage.blockDeviceCharacteristics, VpdPage.logicalBlockProvisioning];

/** The VPD pages a unit with this geometry answers. */
export function supportedVpdPages(geo: UnitGeometry): number[] {
  return SUPPORTED_VPD_PAGES.filter((p) => p !== VpdPage.logicalBlockProvisioning || geo.provisioning !== undefined);
}

function ascii(s: string, len: number): Buffer {
  return Buffer.from(s.replace(/[^\x20-\x7e]/g, ' ').padEnd(len, ' ').slice(0, len), 'ascii');
}

/** Standard INQUIRY data, 96 bytes (SPC-4 §6.4.2): direct-access, SPC-4, HiSup, CmdQue. */
export function standardInquiry(id: UnitIdentity): Buffer {
  const b = Buffer.alloc(STANDARD_INQUIRY_LENGTH);
  b[0] = PERIPHERAL_DIRECT_ACCESS;
  b[2] = 0x06; // VERSION: SPC-4
  b[3] = 0x10 | 0x02; // HISUP, RESPONSE DATA FORMAT 2
  b[4] = STANDARD_INQUIRY_LENGTH - 5;
  b[7] = 0x02; // CMDQUE
  ascii(id.vendor, 8).copy(b, 8);
  ascii(id.product, 16).copy(b, 16);
  ascii(id.revision, 4).copy(b, 32);
  VERSION_DESCRIPTORS.forEach((v, i) => b.writeUInt16BE(v, 58 + 2 * i));
  return b;
}

/** Standard INQUIRY for a LUN that does not exist: peripheral qualifier 011b (SPC-4 §6.4.2). */
export function notPresentInquiry(id: UnitIdentity): Buffer {
  const b = standardInquiry(id);
  b[0] = 0x7f;
  return b;
}

function vpd(page: number, body: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h[0] = PERIPHERAL_DIRECT_ACCESS;
  h[1] = page;
  h.writeUInt16BE(body.length, 2);
  return Buffer.concat([h, body]);
}

/** Code set, association and designator type values (SPC-4 §7.8.6.1). */
const CodeSet = { binary: 1, ascii: 2, utf8: 3 } as const;
const Association = { logicalUnit: 0, targetPort: 1, targetDevice: 2 } as const;
const DesignatorType = { t10VendorId: 1, naa: 3, relativeTargetPort: 4, scsiNameString: 8 } as const;
/** Protocol identifier for iSCSI (SPC-4 §7.6.1 table 362). */
const PROTOCOL_ISCSI = 5;

function designator(codeSet: number, association: number, type: number, value: Buffer, protocol?: number): Buffer {
  const h = Buffer.alloc(4);
  h[0] = ((protocol ?? 0) << 4) | codeSet;
  h[1] = (protocol !== undefined ? 0x80 : 0) | (association << 4) | type; // PIV when a protocol is named
  h[3] = value.length;
  return Buffer.concat([h, value]);
}

/** SCSI name string: UTF-8, NUL-terminated, padded with NULs to a multiple of 4 (SPC-4 §7.8.6.11). */
function nameString(s: string): Buffer {
  const raw = Buffer.from(s, 'utf8');
  const len = (raw.length + 1 + 3) & ~3;
  const b = Buffer.alloc(len);
  raw.copy(b);
  return b;
}

/** A VPD page by code, or null when the page is not implemented (the caller answers INVALID FIELD IN CDB). */
export function vpdPage(page: number, id: UnitIdentity, geo: UnitGeometry): Buffer | null {
  switch (page) {
    case VpdPage.supportedPages:
      return vpd(page, Buffer.from(supportedVpdPages(geo)));
    case VpdPage.unitSerialNumber:
      return vpd(page, Buffer.from(id.serial.replace(/[^\x20-\x7e]/g, '?'), 'ascii'));
    case VpdPage.deviceIdentification: {
      const naa = Buffer.alloc(8);
      naa.writeBigUInt64BE(BigInt.asUintN(64, id.naa));
      const rtp = Buffer.alloc(4);
      rtp.writeUInt16BE(id.relativeTargetPort & 0xffff, 2);
      return vpd(
        page,
        Buffer.concat([
          designator(CodeSet.binary, Association.logicalUnit, DesignatorType.naa, naa),
          designator(CodeSet.ascii, Association.logicalUnit, DesignatorType.t10VendorId, Buffer.concat([ascii(id.vendor, 8), Buffer.from(id.serial, 'ascii')])),
          designator(CodeSet.binary, Association.targetPort, DesignatorType.relativeTargetPort, rtp, PROTOCOL_ISCSI),
          designator(CodeSet.utf8, Association.targetPort, DesignatorType.scsiNameString, nameString(`${id.targetName},t,0x${id.portalGroupTag.toString(16).padStart(4, '0')}`), PROTOCOL_ISCSI),
          designator(CodeSet.utf8, Association.targetDevice, DesignatorType.scsiNameString, nameString(id.targetName), PROTOCOL_ISCSI),
        ]),
      );
    }
    case VpdPage.blockLimits: {
      const b = Buffer.alloc(0x3c);
      const granularity = Math.max(1, (geo.ioGranularity ?? geo.physicalBlockSize) / geo.blockSize);
      b.writeUInt16BE(granularity, 2); // OPTIMAL TRANSFER LENGTH GRANULARITY
      b.writeUInt32BE(geo.maxTransferBlocks, 4); // MAXIMUM TRANSFER LENGTH
      b.writeUInt32BE(geo.maxTransferBlocks, 8); // OPTIMAL TRANSFER LENGTH
      if (geo.maxWriteSameBlocks) {
        b[0] = 0x01; // WSNZ: WRITE SAME with 0 blocks is refused
        b.writeBigUInt64BE(BigInt(geo.maxWriteSameBlocks), 32); // MAXIMUM WRITE SAME LENGTH (page bytes 36-43)
      }
      b[1] = Math.min(255, geo.maxCompareAndWriteBlocks ?? 0); // MAXIMUM COMPARE AND WRITE LENGTH
      const p = geo.provisioning;
      if (p) {
        b.writeUInt32BE(p.maxUnmapBlocks, 16); // MAXIMUM UNMAP LBA COUNT (page bytes 20-23)
        b.writeUInt32BE(p.maxUnmapDescriptors, 20); // MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT (24-27)
        b.writeUInt32BE(p.unmapGranularity, 24); // OPTIMAL UNMAP GRANULARITY (28-31)
        b.writeUInt32BE(0x80000000, 28); // UGAVALID=1, UNMAP GRANULARITY ALIGNMENT 0 (32-35)
      } // fully provisioned: the unmap counts stay 0 (no UNMAP)
      return vpd(page, b);
    }
    case VpdPage.logicalBlockProvisioning: {
      if (!geo.provisioning) return null;
      const b = Buffer.alloc(4);
      b[0] = 0; // THRESHOLD EXPONENT: no provisioning thresholds
      b[1] = 0x80 | 0x40 | 0x20 | 0x04; // LBPU, LBPWS, LBPWS10, LBPRZ; ANC_SUP=0 (no anchored blocks), DP=0
      b[2] = 0x02; // PROVISIONING TYPE: thin provisioned
      return vpd(page, b);
    }
    case VpdPage.blockDeviceCharacteristics: {
      const b = Buffer.alloc(0x3c);
      b.writeUInt16BE(0x0001, 0); // MEDIUM ROTATION RATE: non-rotating medium
      return vpd(page, b);
    }
    default:
      return null;
  }
}

/** READ CAPACITY (10) data: last LBA (FFFFFFFFh when it does not fit: use READ CAPACITY 16) and block length. */
export function readCapacity10(geo: UnitGeometry): Buffer {
  const b = Buffer.alloc(8);
  const last = geo.blocks - 1n;
  b.writeUInt32BE(last > 0xffffffffn ? 0xffffffff : Number(last), 0);
  b.writeUInt32BE(geo.blockSize, 4);
  return b;
}

/** READ CAPACITY (16) parameter data, 32 bytes; no protection; LBPME=1 LBPRZ=1 when thin provisioned. */
export function readCapacity16(geo: UnitGeometry): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigUInt64BE(geo.blocks - 1n, 0);
  b.writeUInt32BE(geo.blockSize, 8);
  b[13] = Math.max(0, Math.round(Math.log2(geo.physicalBlockSize / geo.blockSize))) & 0x0f; // LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT
  if (geo.provisioning) b[14] = 0x80 | 0x40; // LBPME, LBPRZ (LOWEST ALIGNED LOGICAL BLOCK ADDRESS 0)
  return b;
}

/** REPORT LUNS parameter data listing `luns` (single-level LUN addressing, SAM-5 §4.7). */
export function reportLuns(luns: readonly number[]): Buffer {
  const b = Buffer.alloc(8 + 8 * luns.length);
  b.writeUInt32BE(8 * luns.length, 0);
  luns.forEach((lun, i) => {
    // peripheral device addressing for < 256, flat space addressing (01b) above
    if (lun < 256) b[8 + 8 * i + 1] = lun;
    else b.writeUInt16BE(0x4000 | (lun & 0x3fff), 8 + 8 * i);
  });
  return b;
}

/** Mode state that can change at run time (MODE SELECT). */
export interface ModeState {
  /** Control page D_SENSE: sense data in descriptor format. */
  readonly descriptorSense: boolean;
}

/** The mode pages, in ascending page-code order (MODE SENSE all pages lists them so). */
export const MODE_PAGES = [ModePage.readWriteErrorRecovery, ModePage.caching, ModePage.control] as const;

/**
 * One mode page (page_0 format) for page control `pc`: read-write error recovery (SBC-3
 * §6.5.9), caching (§6.5.5), control (SPC-4 §7.5.7). Changeable values mark D_SENSE only.
 */
export function modePage(code: number, geo: UnitGeometry, pc: number, state: ModeState = { descriptorSense: false }): Buffer | null {
  const changeable = pc === PageControl.changeable;
  switch (code) {
    case ModePage.readWriteErrorRecovery: {
      const b = Buffer.alloc(12);
      b[0] = code;
      b[1] = 10;
      return b; // no automatic reallocation, no retries to report: all zero
    }
    case ModePage.caching: {
      const b = Buffer.alloc(20);
      b[0] = code;
      b[1] = 18;
      if (!changeable && geo.volatileWriteCache) b[2] = 0x04; // WCE
      return b;
    }
    case ModePage.control: {
      const b = Buffer.alloc(12);
      b[0] = code;
      b[1] = 10;
      if (changeable) b[2] = 0x04; // D_SENSE is changeable
      else {
        if (pc === PageControl.current && state.descriptorSense) b[2] = 0x04;
        b[3] = 0x10; // QUEUE ALGORITHM MODIFIER 1: unrestricted reordering
      }
      return b;
    }
    default:
      return null;
  }
}

/**
 * MODE SENSE (6) or (10) parameter data. Returns null for a page the target does not have
 * (INVALID FIELD IN CDB); saved values are refused by the caller before this.
 */
export function modeSense(geo: UnitGeometry, req: { ten: boolean; disableBlockDescriptors: boolean; longLba: boolean; pageControl: number; pageCode: number; subpageCode: number }, state: ModeState = { descriptorSense: false }): Buffer | null {
  if (req.subpageCode !== 0 && !(req.pageCode === ModePage.allPages && req.subpageCode === 0xff)) return null;
  let pages: Buffer[];
  if (req.pageCode === ModePage.allPages) pages = MODE_PAGES.map((c) => modePage(c, geo, req.pageControl, state)!);
  else {
    const one = modePage(req.pageCode, geo, req.pageControl, state);
    if (!one) return null;
    pages = [one];
  }
  let desc = Buffer.alloc(0);
  if (!req.disableBlockDescriptors) {
    if (req.longLba) {
      desc = Buffer.alloc(16);
      desc.writeBigUInt64BE(geo.blocks, 0);
      desc.writeUInt32BE(geo.blockSize, 12);
    } else {
      desc = Buffer.alloc(8);
      desc.writeUInt32BE(geo.blocks > 0xffffffffn ? 0xffffffff : Number(geo.blocks), 0);
      desc.writeUIntBE(geo.blockSize, 5, 3);
    }
  }
  const deviceSpecific = (geo.readOnly ? 0x80 : 0) | 0x10; // WP, DPOFUA (FUA honoured)
  const body = Buffer.concat([desc, ...pages]);
  let head: Buffer;
  if (req.ten) {
    head = Buffer.alloc(8);
    head.writeUInt16BE(6 + body.length, 0);
    head[3] = deviceSpecific;
    head[4] = req.longLba && desc.length ? 0x01 : 0;
    head.writeUInt16BE(desc.length, 6);
  } else {
    head = Buffer.alloc(4);
    head[0] = Math.min(255, 3 + body.length);
    head[2] = deviceSpecific;
    head[3] = desc.length;
  }
  return Buffer.concat([head, body]);
}
