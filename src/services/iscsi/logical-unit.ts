/**
 * SCSI command execution for one logical unit backed by a BlockDevice (SBC-3 / SPC-4, the
 * command set listed in docs/iscsi.md). The iSCSI connection asks for a `CommandPlan` as soon as a SCSI
 * Command PDU arrives (so it knows how much Data-Out to solicit), then runs it. Every
 * failure becomes CHECK CONDITION with fixed or descriptor sense (D_SENSE); nothing here throws to the
 * connection except programming errors.
 */
import { isDisklessError } from '../../errors/index.js';
import type { ReadBufferSource } from './read-buffer-pool.js';
import type { BlockDevice } from '../../store/block-device.js';
import { decodeCdb, type Cdb } from '../../wire/scsi/cdb.js';
import { parseModeSelect } from '../../wire/scsi/mode-select.js';
import { reportSupportedOpcodes, SUPPORTED_COMMANDS } from './supported-commands.js';
import { unitStateOf, type UnitState } from './unit-state.js';
import type { AccessClass, Nexus } from './persistent-reservations.js';
import { Asc, PageControl, ScsiStatus, SenseKey } from '../../wire/scsi/scsi-constants.js';
import { encodeDescriptorSense, encodeFixedSense, senseOf, type Sense } from '../../wire/scsi/sense.js';
import { modeSense, notPresentInquiry, readCapacity10, readCapacity16, reportLuns, standardInquiry, vpdPage, type UnitGeometry, type UnitIdentity } from '../../wire/scsi/scsi-data.js';
import { checkResult, cut, GOOD, MAX_TRANSFER_BYTES, RESERVATION_CONFLICT, type CommandPlan, type ScsiResult } from './command-plan.js';
import { UnitContext } from './unit-context.js';
import { firstDifference, MAX_COMPARE_AND_WRITE_BLOCKS, miscompare, planCompareAndWrite, planReadWrite, planVerify, planWriteLike } from './data-path.js';
import { MAX_UNMAP_BYTES, MAX_UNMAP_DESCRIPTORS, MAX_WRITE_SAME_BYTES, planGetLbaStatus, planUnmap, planWriteSame } from './provisioning-commands.js';

export { checkResult, MAX_TRANSFER_BYTES, type CommandPlan, type ScsiResult } from './command-plan.js';
export { UNIT_PRODUCT, UNIT_REVISION, UNIT_VENDOR, unitIdentity } from './unit-identity.js';

/**
 * The preferred I/O and unmap granularity (page-cache pages, file-system blocks): VPD B0h
 * OPTIMAL TRANSFER LENGTH GRANULARITY and OPTIMAL UNMAP GRANULARITY. READ CAPACITY 16 reports
 * physical block = logical block (exponent 0): a GET LBA STATUS descriptor must start at the
 * requested LBA, and libiscsi's GetLBAStatus.UnmapSingle then expects it at LBA + 2^exponent,
 * which only agrees when the exponent is 0. Linux takes its io_min hint from B0h anyway.
 */
const PHYSICAL_BLOCK = 4096;

/** How a command is treated under a reservation (SPC-4 §5.9.1 table 59). */
function accessClass(cdb: Cdb): AccessClass {
  switch (cdb.op) {
    case 'inquiry':
    case 'reportLuns':
    case 'requestSense':
    case 'reportSupportedOpcodes':
    case 'readCapacity10':
    case 'readCapacity16':
    case 'testUnitReady':
    case 'persistentReserveIn':
    case 'persistentReserveOut':
    case 'release':
    case 'unsupported':
      return 'always';
    case 'read':
    case 'verify':
    case 'prefetch':
    case 'getLbaStatus':
    case 'modeSense':
      return 'read';
    default:
      return 'write';
  }
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
  /** What every session of this device shares: locks, reservations, D_SENSE. */
  private readonly state: UnitState;
  /** This session's I_T nexus as reservations name it (checked on every command: built once). */
  private readonly nexusId: string;
  /** The device, geometry and state with the helpers the command planners share. */
  private readonly ctx: UnitContext;

  constructor(
    readonly device: BlockDevice,
    readonly readOnly: boolean,
    readonly identity: UnitIdentity,
    readonly nexus: UnitNexus = {},
    /** Where READ buffers come from (the server's ReadBufferPool; plain allocation by default). */
    private readonly readBuffers?: ReadBufferSource,
  ) {
    this.lun = nexus.lun ?? 0;
    this.nexusId = `${nexus.initiator ?? ''},i,0x${(nexus.isid ?? 0).toString(16).padStart(12, '0')}`;
    const ro = readOnly || device.readOnly;
    this.geometry = {
      blocks: BigInt(Math.floor(device.size / device.blockSize)),
      blockSize: device.blockSize,
      readOnly: ro,
      volatileWriteCache: device.capabilities.volatileWriteCache,
      maxTransferBlocks: MAX_TRANSFER_BYTES / device.blockSize,
      physicalBlockSize: device.blockSize,
      ioGranularity: Math.max(PHYSICAL_BLOCK, device.blockSize),
      maxCompareAndWriteBlocks: MAX_COMPARE_AND_WRITE_BLOCKS,
      maxWriteSameBlocks: MAX_WRITE_SAME_BYTES / device.blockSize,
      // Thin provisioning when the device can free blocks (file volumes: holes punched; they read as zeros).
      ...(device.capabilities.unmap
        ? { provisioning: { maxUnmapBlocks: MAX_UNMAP_BYTES / device.blockSize, maxUnmapDescriptors: MAX_UNMAP_DESCRIPTORS, unmapGranularity: Math.max(1, PHYSICAL_BLOCK / device.blockSize) } }
        : {}),
    };
    this.state = unitStateOf(device);
    this.ctx = new UnitContext(device, this.geometry, this.state);
  }

  /** Decides what the command needs; never throws for bad CDBs (they become 'fail' plans). */
  plan(cdbBytes: Buffer, expectedDataTransferLength?: number): CommandPlan {
    let cdb: Cdb;
    try {
      cdb = decodeCdb(cdbBytes);
    } catch (err) {
      if (isDisklessError(err, 'SCSI_CHECK_CONDITION')) return { kind: 'fail', result: this.ctx.check(senseOf(err)) };
      throw err;
    }
    if (!this.mayRun(cdb)) return { kind: 'fail', result: RESERVATION_CONFLICT };
    const g = this.geometry;
    switch (cdb.op) {
      case 'testUnitReady':
        return { kind: 'noData', run: async () => GOOD };
      case 'inquiry': {
        if (!cdb.evpd) return this.ctx.dataIn(standardInquiry(this.identity), cdb.allocationLength);
        const page = vpdPage(cdb.pageCode, this.identity, g);
        if (!page) return this.ctx.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 2 } });
        return this.ctx.dataIn(page, cdb.allocationLength);
      }
      case 'requestSense': {
        // Sense is returned with each CHECK CONDITION (autosense), so nothing is pending here (SPC-4 §6.39).
        const none: Sense = { key: SenseKey.noSense, asc: Asc.noAdditionalSense.asc, ascq: Asc.noAdditionalSense.ascq };
        return this.ctx.dataIn(cdb.descriptorFormat ? encodeDescriptorSense(none) : encodeFixedSense(none), cdb.allocationLength);
      }
      case 'readCapacity10':
        return this.ctx.dataIn(readCapacity10(g), 8);
      case 'readCapacity16':
        return this.ctx.dataIn(readCapacity16(g), cdb.allocationLength);
      case 'reportLuns':
        if (cdb.selectReport > 2) return this.ctx.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 2 } });
        return this.ctx.dataIn(reportLuns([this.lun]), cdb.allocationLength);
      case 'modeSense': {
        if (cdb.pageControl === PageControl.saved) return this.ctx.fail(SenseKey.illegalRequest, Asc.savingParametersNotSupported, { field: { inCdb: true, byte: 2, bit: 7 } });
        const data = modeSense(g, cdb, { descriptorSense: this.state.descriptorSense });
        if (!data) return this.ctx.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: cdb.subpageCode !== 0 ? 3 : 2 } });
        return this.ctx.dataIn(data, cdb.allocationLength);
      }
      case 'modeSelect':
        return this.modeSelect(cdb.ten, cdb.pageFormat, cdb.savePages, cdb.parameterListLength);
      case 'synchronizeCache': {
        const bad = this.ctx.rangeCheck(cdb.lba, cdb.blocks);
        if (bad) return bad;
        return { kind: 'noData', run: () => this.ctx.guard(() => this.device.flush().then(() => GOOD)) };
      }
      case 'prefetch': {
        // The page cache does the prefetching; nothing is promised (GOOD, not CONDITION MET, SBC-3 §5.9).
        const bad = this.ctx.rangeCheck(cdb.lba, cdb.blocks);
        return bad ?? { kind: 'noData', run: async () => GOOD };
      }
      case 'read':
      case 'write':
        return planReadWrite(this.ctx, cdb, cdbBytes, this.readBuffers);
      case 'writeAndVerify':
        return planWriteLike(this.ctx, cdb.lba, cdb.blocks, cdbBytes[0] === 0x2e ? 7 : 10, async (offset, data) => {
          await this.device.write(offset, data, { fua: true });
          if (cdb.byteCheck) {
            // BYTCHK=1: read back what landed and compare (SBC-3 §5.40).
            const back = await this.device.read(offset, data.length);
            const at = firstDifference(back, data);
            if (at >= 0) throw miscompare(at);
          }
        });
      case 'orWrite':
        return planWriteLike(this.ctx, cdb.lba, cdb.blocks, 10, async (offset, data) => {
          const old = await this.device.read(offset, data.length);
          for (let i = 0; i < old.length; i++) old[i]! |= data[i]!;
          await this.device.write(offset, old, { fua: cdb.fua });
        });
      case 'verify':
        return planVerify(this.ctx, cdb.lba, cdb.blocks, cdb.byteCheck, cdbBytes[0] === 0x2f ? 7 : cdbBytes[0] === 0xaf ? 6 : 10);
      case 'compareAndWrite':
        // NUMBER OF LOGICAL BLOCKS 0 moves nothing; with Data-Out announced, the CDB and the transfer disagree (a count above 255 wrapped).
        if (cdb.blocks === 0 && (expectedDataTransferLength ?? 0) > 0) return this.ctx.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 13 } });
        return planCompareAndWrite(this.ctx, cdb.lba, cdb.blocks, cdb.fua);
      case 'writeSame':
        // The Data-Out buffer is exactly one logical block (none with NDOB); an initiator announcing another size is refused (libiscsi WriteSame*.InvalidDataOutSize).
        if (expectedDataTransferLength !== undefined && expectedDataTransferLength !== (cdb.noDataOut ? 0 : g.blockSize)) return this.ctx.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb);
        return planWriteSame(this.ctx, cdb.lba, cdb.blocks, cdb.unmap, cdb.anchor, cdb.noDataOut, cdbBytes[0] === 0x41 ? 7 : 10);
      case 'reportSupportedOpcodes': {
        const data = reportSupportedOpcodes(SUPPORTED_COMMANDS.filter((c) => c.available?.(this.device) ?? true), cdb);
        if (!data) return this.ctx.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 2, bit: 2 } });
        return this.ctx.dataIn(data, cdb.allocationLength);
      }
      case 'preventAllow':
        // Not a removable medium (RMB=0): nothing to lock; PREVENT is accepted and has no effect (SBC-3 §5.11).
        return { kind: 'noData', run: async () => GOOD };
      case 'startStopUnit':
        if (cdb.powerCondition !== 0) return this.ctx.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 4, bit: 7 } });
        // A virtual disk has no motor and no medium to eject: START and STOP flush and complete (SBC-3 §5.25).
        return { kind: 'noData', run: () => this.ctx.guard(async () => (cdb.noFlush || g.readOnly ? GOOD : this.device.flush().then(() => GOOD))) };
      case 'reserve':
      case 'release':
        return { kind: 'noData', run: async () => this.reserveRelease(cdb.op) };
      case 'persistentReserveIn':
        return { kind: 'dataIn', run: async () => this.ctx.wrap(() => ({ status: ScsiStatus.good, data: cut(this.state.persistent.in(cdb.serviceAction), cdb.allocationLength) })) };
      case 'persistentReserveOut':
        return this.ctx.parameters(cdb.parameterListLength, async (params) => {
          const r = await this.state.persistent.out(this.prNexus, cdb.serviceAction, cdb.scope, cdb.type, params);
          return r === 'good' ? GOOD : RESERVATION_CONFLICT;
        });
      case 'unmap':
        if (!g.provisioning) return this.ctx.fail(SenseKey.illegalRequest, Asc.invalidCommandOperationCode, { field: { inCdb: true, byte: 0 } });
        return planUnmap(this.ctx, cdb.anchor, cdb.parameterListLength);
      case 'getLbaStatus':
        if (!g.provisioning) return this.ctx.fail(SenseKey.illegalRequest, Asc.invalidCommandOperationCode, { field: { inCdb: true, byte: 0 } });
        return planGetLbaStatus(this.ctx, cdb.lba, cdb.allocationLength);
      case 'unsupported':
        return this.ctx.fail(SenseKey.illegalRequest, Asc.invalidCommandOperationCode, { field: { inCdb: true, byte: 0 } });
    }
  }


  private get prNexus(): Nexus {
    return { id: this.nexusId, relativeTargetPort: this.identity.relativeTargetPort };
  }

  /** SPC-2 RESERVE/RELEASE and persistent reservations (SPC-4 §5.9.1, SPC-2 §5.5.1): may this command run for this nexus now? */
  private mayRun(cdb: Cdb): boolean {
    const access = accessClass(cdb);
    const holder = this.state.spc2Holder;
    if (holder !== null && holder !== this.nexusId) {
      return cdb.op === 'inquiry' || cdb.op === 'reportLuns' || cdb.op === 'requestSense' || cdb.op === 'reportSupportedOpcodes' || cdb.op === 'release';
    }
    if (cdb.op === 'reserve' && this.state.persistent.reserved) return false;
    return this.state.persistent.allows(this.nexusId, access);
  }

  private reserveRelease(op: 'reserve' | 'release'): ScsiResult {
    const s = this.state;
    if (op === 'reserve') {
      if (s.spc2Holder !== null && s.spc2Holder !== this.nexusId) return RESERVATION_CONFLICT;
      s.spc2Holder = this.nexusId;
    } else if (s.spc2Holder === this.nexusId) s.spc2Holder = null;
    return GOOD;
  }

  /** LOGICAL UNIT RESET / target reset: SPC-2 reservations are released, persistent reservations stay (SPC-4 §5.9.3, SAM-5 §6.3). */
  reset(): void {
    this.state.spc2Holder = null;
  }

  /** Releases what this I_T nexus holds that does not outlive it (an SPC-2 reservation). Called when the session ends. */
  release(): void {
    if (this.state.spc2Holder === this.nexusId) this.state.spc2Holder = null;
  }

  /**
   * MODE SELECT 6/10 (SPC-4 §6.9-10): the parameter list may set what MODE SENSE's changeable
   * values mark changeable (the control page's D_SENSE); anything else must match the
   * current values. Saving (SP=1) is not supported.
   */
  private modeSelect(ten: boolean, pageFormat: boolean, savePages: boolean, length: number): CommandPlan {
    if (savePages) return this.ctx.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 1, bit: 0 } });
    if (length === 0) return { kind: 'noData', run: async () => GOOD };
    if (!pageFormat) return this.ctx.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 1, bit: 4 } });
    return this.ctx.parameters(length, async (p) => {
      const change = parseModeSelect(p, ten, this.geometry, this.state.descriptorSense);
      if (typeof change === 'number') return this.ctx.check({ key: SenseKey.illegalRequest, ...Asc.invalidFieldInParameterList, field: { inCdb: false, byte: change } });
      if (change.descriptorSense !== undefined) this.state.descriptorSense = change.descriptorSense;
      return GOOD;
    });
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
    return { kind: 'fail', result: checkResult({ key: SenseKey.illegalRequest, ...Asc.logicalUnitNotSupported }) };
  }
}
