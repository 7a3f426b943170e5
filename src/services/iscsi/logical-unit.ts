/**
 * SCSI command execution for one logical unit backed by a BlockDevice (SBC-3 / SPC-4, the
 * first-cut command set). The iSCSI connection asks for a `CommandPlan` as soon as a SCSI
 * Command PDU arrives (so it knows how much Data-Out to solicit), then runs it. Every
 * failure becomes CHECK CONDITION with fixed-format sense; nothing here throws to the
 * connection except programming errors.
 */
import { createHash } from 'node:crypto';
import { isDisklessError } from '../../errors/index.js';
import type { BlockDevice } from '../../store/block-device.js';
import { decodeCdb, type Cdb } from '../../wire/scsi/cdb.js';
import { Asc, PageControl, ScsiStatus, SenseKey, type AscPair } from '../../wire/scsi/scsi-constants.js';
import { encodeDescriptorSense, encodeFixedSense, senseOf, type Sense } from '../../wire/scsi/sense.js';
import { modeSense, notPresentInquiry, readCapacity10, readCapacity16, reportLuns, standardInquiry, vpdPage, type UnitGeometry, type UnitIdentity } from '../../wire/scsi/scsi-data.js';

/** The outcome of one SCSI command. */
export interface ScsiResult {
  readonly status: number;
  /** Sense data to send with CHECK CONDITION. */
  readonly sense?: Buffer;
  /** Data-In bytes produced (already cut to the CDB's allocation length, not to the iSCSI EDTL). */
  readonly data?: Buffer;
}

/** What a command needs from the transport before it can run. */
export type CommandPlan =
  | { readonly kind: 'dataIn' | 'noData'; run(): Promise<ScsiResult> }
  /**
   * A write of `length` bytes. The transport gathers min(length, EDTL) bytes of Data-Out and
   * calls run with them in order; run writes the whole blocks among them (an EDTL below the
   * CDB's length writes only what was sent, as libiscsi's residual tests expect).
   */
  | { readonly kind: 'dataOut'; readonly length: number; run(data: readonly Buffer[]): Promise<ScsiResult> }
  /** Fails before any data moves (the transport still absorbs unsolicited Data-Out). */
  | { readonly kind: 'fail'; readonly result: ScsiResult };

/** Largest READ/WRITE accepted, in bytes (one buffer per command is allocated for it). */
export const MAX_TRANSFER_BYTES = 8 * 1024 * 1024;
/** The physical block size reported (page-cache pages). */
const PHYSICAL_BLOCK = 4096;

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

/** The leading whole blocks of `data` (a list of buffers), without copying. */
function wholeBlocks(data: readonly Buffer[], blockSize: number): Buffer[] {
  let left = Math.floor(data.reduce((n, b) => n + b.length, 0) / blockSize) * blockSize;
  const out: Buffer[] = [];
  for (const b of data) {
    if (left <= 0) break;
    out.push(b.length <= left ? b : b.subarray(0, left));
    left -= b.length;
  }
  return out;
}

/** The CHECK CONDITION result for a sense. */
export function checkResult(sense: Sense, descriptor = false): ScsiResult {
  return { status: ScsiStatus.checkCondition, sense: descriptor ? encodeDescriptorSense(sense) : encodeFixedSense(sense) };
}

const GOOD: ScsiResult = { status: ScsiStatus.good };

function fail(key: number, asc: AscPair, extra: Partial<Sense> = {}): CommandPlan {
  return { kind: 'fail', result: checkResult({ key, asc: asc.asc, ascq: asc.ascq, ...extra }) };
}

/** LUN 0 of a target: a BlockDevice plus the identity and geometry it reports. */
/** The I_T nexus a LogicalUnit instance serves, and the LUN number it answers on. */
export interface UnitNexus {
  /** LUN number (REPORT LUNS lists it; commands to other LUNs get LOGICAL UNIT NOT SUPPORTED). Default 0. */
  readonly lun?: number;
  /** iSCSI initiator name of the session. */
  readonly initiator?: string;
  /** ISID of the session (initiator port = name + ISID). */
  readonly isid?: number;
}

export class LogicalUnit {
  readonly geometry: UnitGeometry;
  readonly lun: number;

  constructor(
    readonly device: BlockDevice,
    readonly readOnly: boolean,
    readonly identity: UnitIdentity,
    readonly nexus: UnitNexus = {},
  ) {
    this.lun = nexus.lun ?? 0;
    const ro = readOnly || device.readOnly;
    this.geometry = {
      blocks: BigInt(Math.floor(device.size / device.blockSize)),
      blockSize: device.blockSize,
      readOnly: ro,
      volatileWriteCache: device.capabilities.volatileWriteCache,
      maxTransferBlocks: MAX_TRANSFER_BYTES / device.blockSize,
      physicalBlockSize: Math.max(PHYSICAL_BLOCK, device.blockSize),
    };
  }

  /** Decides what the command needs; never throws for bad CDBs (they become 'fail' plans). */
  plan(cdbBytes: Buffer): CommandPlan {
    let cdb: Cdb;
    try {
      cdb = decodeCdb(cdbBytes);
    } catch (err) {
      if (isDisklessError(err, 'SCSI_CHECK_CONDITION')) return { kind: 'fail', result: checkResult(senseOf(err)) };
      throw err;
    }
    const g = this.geometry;
    switch (cdb.op) {
      case 'testUnitReady':
        return { kind: 'noData', run: async () => GOOD };
      case 'inquiry': {
        if (!cdb.evpd) return this.dataIn(standardInquiry(this.identity), cdb.allocationLength);
        const page = vpdPage(cdb.pageCode, this.identity, g);
        if (!page) return fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 2 } });
        return this.dataIn(page, cdb.allocationLength);
      }
      case 'requestSense': {
        // Sense is returned with each CHECK CONDITION (autosense), so nothing is pending here (SPC-4 §6.39).
        const none: Sense = { key: SenseKey.noSense, asc: Asc.noAdditionalSense.asc, ascq: Asc.noAdditionalSense.ascq };
        return this.dataIn(cdb.descriptorFormat ? encodeDescriptorSense(none) : encodeFixedSense(none), cdb.allocationLength);
      }
      case 'readCapacity10':
        return this.dataIn(readCapacity10(g), 8);
      case 'readCapacity16':
        return this.dataIn(readCapacity16(g), cdb.allocationLength);
      case 'reportLuns':
        if (cdb.selectReport > 2) return fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 2 } });
        return this.dataIn(reportLuns([this.lun]), cdb.allocationLength);
      case 'modeSense': {
        if (cdb.pageControl === PageControl.saved) return fail(SenseKey.illegalRequest, Asc.savingParametersNotSupported, { field: { inCdb: true, byte: 2, bit: 7 } });
        const data = modeSense(g, cdb);
        if (!data) return fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: cdb.subpageCode !== 0 ? 3 : 2 } });
        return this.dataIn(data, cdb.allocationLength);
      }
      case 'synchronizeCache': {
        const bad = this.rangeCheck(cdb.lba, cdb.blocks);
        if (bad) return bad;
        return { kind: 'noData', run: () => this.guard(() => this.device.flush().then(() => GOOD)) };
      }
      case 'read':
      case 'write': {
        const bad = this.rangeCheck(cdb.lba, cdb.blocks);
        if (bad) return bad;
        const bytes = cdb.blocks * g.blockSize;
        if (bytes > MAX_TRANSFER_BYTES) return fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: cdbBytes[0] === 0x28 || cdbBytes[0] === 0x2a ? 7 : 10 } });
        const offset = Number(cdb.lba) * g.blockSize;
        if (cdb.op === 'read') {
          if (bytes === 0) return { kind: 'noData', run: async () => GOOD };
          return {
            kind: 'dataIn',
            run: () =>
              this.guard(async () => {
                const buf = Buffer.allocUnsafe(bytes);
                await this.device.readInto(offset, buf);
                return { status: ScsiStatus.good, data: buf };
              }),
          };
        }
        if (g.readOnly) return fail(SenseKey.dataProtect, Asc.writeProtected);
        if (bytes === 0) return { kind: 'noData', run: async () => GOOD };
        const fua = cdb.fua;
        const bs = g.blockSize;
        return {
          kind: 'dataOut',
          length: bytes,
          run: (data) =>
            this.guard(async () => {
              const whole = wholeBlocks(data, bs);
              if (whole.length > 0) await this.device.write(offset, whole, { fua });
              return GOOD;
            }),
        };
      }
      case 'unsupported':
        return fail(SenseKey.illegalRequest, Asc.invalidCommandOperationCode, { field: { inCdb: true, byte: 0 } });
    }
  }

  /** LBA + blocks within capacity, else LBA OUT OF RANGE (SBC-3 §4.5). */
  private rangeCheck(lba: bigint, blocks: number): CommandPlan | null {
    if (lba + BigInt(blocks) > this.geometry.blocks) return fail(SenseKey.illegalRequest, Asc.lbaOutOfRange, { information: lba });
    return null;
  }

  private dataIn(data: Buffer, allocationLength: number): CommandPlan {
    const out = data.length > allocationLength ? data.subarray(0, allocationLength) : data;
    return { kind: 'dataIn', run: async () => ({ status: ScsiStatus.good, data: out }) };
  }

  /** Turns store errors into sense: out of range → LBA OUT OF RANGE, read-only → WRITE PROTECTED, I/O → MEDIUM/HARDWARE ERROR. */
  private async guard(fn: () => Promise<ScsiResult>): Promise<ScsiResult> {
    try {
      return await fn();
    } catch (err) {
      if (isDisklessError(err, 'STORE_OUT_OF_RANGE')) return checkResult({ key: SenseKey.illegalRequest, ...Asc.lbaOutOfRange });
      if (isDisklessError(err, 'STORE_READ_ONLY')) return checkResult({ key: SenseKey.dataProtect, ...Asc.writeProtected });
      if (isDisklessError(err, 'SCSI_CHECK_CONDITION')) return checkResult(senseOf(err));
      if (isDisklessError(err, 'STORE_IO') || isDisklessError(err, 'STORE_CLOSED')) return checkResult({ key: SenseKey.hardwareError, ...Asc.internalTargetFailure });
      throw err;
    }
  }

  /**
   * Plan for a LUN that does not exist (SPC-4 §6.4.2, §6.33): INQUIRY answers with peripheral
   * qualifier 011b, REPORT LUNS lists the unit's LUN, anything else is LOGICAL UNIT NOT SUPPORTED.
   */
  static planMissingLun(cdbBytes: Buffer, identity: UnitIdentity, lun = 0): CommandPlan {
    let cdb: Cdb;
    try {
      cdb = decodeCdb(cdbBytes);
    } catch (err) {
      if (isDisklessError(err, 'SCSI_CHECK_CONDITION')) return { kind: 'fail', result: checkResult(senseOf(err)) };
      throw err;
    }
    if (cdb.op === 'inquiry' && !cdb.evpd) {
      const d = notPresentInquiry(identity);
      return { kind: 'dataIn', run: async () => ({ status: ScsiStatus.good, data: d.subarray(0, Math.min(d.length, cdb.allocationLength)) }) };
    }
    if (cdb.op === 'reportLuns') {
      const d = reportLuns([lun]);
      return { kind: 'dataIn', run: async () => ({ status: ScsiStatus.good, data: d.subarray(0, Math.min(d.length, cdb.allocationLength)) }) };
    }
    return fail(SenseKey.illegalRequest, Asc.logicalUnitNotSupported);
  }
}
