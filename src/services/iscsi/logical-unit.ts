/**
 * SCSI command execution for one logical unit backed by a BlockDevice (SBC-3 / SPC-4, the
 * command set listed in docs/iscsi.md). The iSCSI connection asks for a `CommandPlan` as soon as a SCSI
 * Command PDU arrives (so it knows how much Data-Out to solicit), then runs it. Every
 * failure becomes CHECK CONDITION with fixed or descriptor sense (D_SENSE); nothing here throws to the
 * connection except programming errors.
 */
import { createHash } from 'node:crypto';
import { isDisklessError } from '../../errors/index.js';
import type { ReadBufferSource } from './read-buffer-pool.js';
import type { BlockDevice } from '../../store/block-device.js';
import { decodeCdb, type Cdb } from '../../wire/scsi/cdb.js';
import { checkCondition } from '../../wire/scsi/sense.js';
import { parseModeSelect } from '../../wire/scsi/mode-select.js';
import { reportSupportedOpcodes, SUPPORTED_COMMANDS } from './supported-commands.js';
import { unitStateOf, type UnitState } from './unit-state.js';
import type { AccessClass, Nexus } from './persistent-reservations.js';
import { Asc, PageControl, ScsiStatus, SenseKey, type AscPair } from '../../wire/scsi/scsi-constants.js';
import { encodeDescriptorSense, encodeFixedSense, senseOf, type Sense } from '../../wire/scsi/sense.js';
import { modeSense, notPresentInquiry, readCapacity10, readCapacity16, reportLuns, standardInquiry, vpdPage, type UnitGeometry, type UnitIdentity } from '../../wire/scsi/scsi-data.js';
import { decodeUnmapList, lbaStatusData, LBA_STATUS_DESCRIPTOR_LENGTH, LBA_STATUS_HEADER_LENGTH, MAX_LBA_STATUS_BLOCKS, ProvisioningStatus } from '../../wire/scsi/thin-provisioning.js';

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
/**
 * The preferred I/O and unmap granularity (page-cache pages, file-system blocks): VPD B0h
 * OPTIMAL TRANSFER LENGTH GRANULARITY and OPTIMAL UNMAP GRANULARITY. READ CAPACITY 16 reports
 * physical block = logical block (exponent 0): a GET LBA STATUS descriptor must start at the
 * requested LBA, and libiscsi's GetLBAStatus.UnmapSingle then expects it at LBA + 2^exponent,
 * which only agrees when the exponent is 0. Linux takes its io_min hint from B0h anyway.
 */
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
const RESERVATION_CONFLICT: ScsiResult = { status: ScsiStatus.reservationConflict };

/** Largest COMPARE AND WRITE, in blocks (VPD B0h). */
const MAX_COMPARE_AND_WRITE_BLOCKS = 255;
/**
 * Largest WRITE SAME, in bytes of medium (VPD B0h MAXIMUM WRITE SAME LENGTH, in blocks): 16 MiB
 * written (or unmapped) under one range lock. libiscsi's WriteSame16.Unmap, when the limit
 * allows 65536 blocks, first writes them with one 32 MiB WRITE (16), beyond MAX_TRANSFER_BYTES;
 * below it, it checks that 65536 blocks are refused.
 */
const MAX_WRITE_SAME_BYTES = 16 * 1024 * 1024;
/** WRITE SAME writes its range in pieces of this size. */
const WRITE_SAME_CHUNK = 1024 * 1024;
/** Largest UNMAP, in bytes of medium summed over its descriptors (VPD B0h MAXIMUM UNMAP LBA COUNT; libiscsi wants <= 2^20 blocks). */
const MAX_UNMAP_BYTES = 512 * 1024 * 1024;
/** Most block descriptors in one UNMAP (VPD B0h); each is one hole punched. */
const MAX_UNMAP_DESCRIPTORS = 1024;
/** Most LBA status descriptors one GET LBA STATUS returns (fewer when the allocation length holds fewer). */
const MAX_LBA_STATUS_DESCRIPTORS = 256;

function cut(data: Buffer, allocationLength: number): Buffer {
  return data.length > allocationLength ? data.subarray(0, allocationLength) : data;
}

/** True when every byte of `b` is zero. */
function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Index of the first byte where `a` and `b` differ (over b's length), -1 when equal. */
function firstDifference(a: Buffer, b: Buffer): number {
  if (a.equals(b)) return -1;
  for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** MISCOMPARE / MISCOMPARE DURING VERIFY OPERATION with the byte offset into the Data-Out buffer in INFORMATION (SBC-3 §5.2, §5.33). */
function miscompare(offset: number): Error {
  return checkCondition(SenseKey.miscompare, Asc.miscompareDuringVerify, `miscompare at byte ${offset} of the Data-Out buffer`, { information: BigInt(offset) });
}

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

  constructor(
    readonly device: BlockDevice,
    readonly readOnly: boolean,
    readonly identity: UnitIdentity,
    readonly nexus: UnitNexus = {},
    /** Where READ buffers come from (the server's ReadBufferPool; plain allocation by default). */
    private readonly readBuffers?: ReadBufferSource,
  ) {
    this.lun = nexus.lun ?? 0;
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
  }

  /** Decides what the command needs; never throws for bad CDBs (they become 'fail' plans). */
  plan(cdbBytes: Buffer, expectedDataTransferLength?: number): CommandPlan {
    let cdb: Cdb;
    try {
      cdb = decodeCdb(cdbBytes);
    } catch (err) {
      if (isDisklessError(err, 'SCSI_CHECK_CONDITION')) return { kind: 'fail', result: this.check(senseOf(err)) };
      throw err;
    }
    if (!this.mayRun(cdb)) return { kind: 'fail', result: RESERVATION_CONFLICT };
    const g = this.geometry;
    switch (cdb.op) {
      case 'testUnitReady':
        return { kind: 'noData', run: async () => GOOD };
      case 'inquiry': {
        if (!cdb.evpd) return this.dataIn(standardInquiry(this.identity), cdb.allocationLength);
        const page = vpdPage(cdb.pageCode, this.identity, g);
        if (!page) return this.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 2 } });
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
        if (cdb.selectReport > 2) return this.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 2 } });
        return this.dataIn(reportLuns([this.lun]), cdb.allocationLength);
      case 'modeSense': {
        if (cdb.pageControl === PageControl.saved) return this.fail(SenseKey.illegalRequest, Asc.savingParametersNotSupported, { field: { inCdb: true, byte: 2, bit: 7 } });
        const data = modeSense(g, cdb, { descriptorSense: this.state.descriptorSense });
        if (!data) return this.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: cdb.subpageCode !== 0 ? 3 : 2 } });
        return this.dataIn(data, cdb.allocationLength);
      }
      case 'modeSelect':
        return this.modeSelect(cdb.ten, cdb.pageFormat, cdb.savePages, cdb.parameterListLength);
      case 'synchronizeCache': {
        const bad = this.rangeCheck(cdb.lba, cdb.blocks);
        if (bad) return bad;
        return { kind: 'noData', run: () => this.guard(() => this.device.flush().then(() => GOOD)) };
      }
      case 'prefetch': {
        // The page cache does the prefetching; nothing is promised (GOOD, not CONDITION MET, SBC-3 §5.9).
        const bad = this.rangeCheck(cdb.lba, cdb.blocks);
        return bad ?? { kind: 'noData', run: async () => GOOD };
      }
      case 'read':
      case 'write': {
        const bad = this.rangeCheck(cdb.lba, cdb.blocks) ?? this.lengthCheck(cdb.blocks, cdbBytes[0] === 0x28 || cdbBytes[0] === 0x2a ? 7 : 10);
        if (bad) return bad;
        const bytes = cdb.blocks * g.blockSize;
        const offset = Number(cdb.lba) * g.blockSize;
        if (cdb.op === 'read') {
          if (bytes === 0) return { kind: 'noData', run: async () => GOOD };
          return {
            kind: 'dataIn',
            run: () =>
              this.guard(async () => {
                const buf = this.readBuffers ? this.readBuffers.acquire(bytes) : Buffer.allocUnsafe(bytes);
                await this.device.readInto(offset, buf);
                return { status: ScsiStatus.good, data: buf };
              }),
          };
        }
        if (g.readOnly) return this.fail(SenseKey.dataProtect, Asc.writeProtected);
        if (bytes === 0) return { kind: 'noData', run: async () => GOOD };
        const fua = cdb.fua;
        const bs = g.blockSize;
        const lba = cdb.lba;
        return {
          kind: 'dataOut',
          length: bytes,
          run: (data) =>
            this.guard(async () => {
              const whole = wholeBlocks(data, bs);
              if (whole.length === 0) return GOOD;
              const n = whole.reduce((k, b) => k + b.length, 0) / bs;
              await this.locked(lba, n, () => this.device.write(offset, whole, { fua }));
              return GOOD;
            }),
        };
      }
      case 'writeAndVerify':
        return this.writeLike(cdb.lba, cdb.blocks, cdbBytes[0] === 0x2e ? 7 : 10, async (offset, data) => {
          await this.device.write(offset, data, { fua: true });
          if (cdb.byteCheck) {
            // BYTCHK=1: read back what landed and compare (SBC-3 §5.40).
            const back = await this.device.read(offset, data.length);
            const at = firstDifference(back, data);
            if (at >= 0) throw miscompare(at);
          }
        });
      case 'orWrite':
        return this.writeLike(cdb.lba, cdb.blocks, 10, async (offset, data) => {
          const old = await this.device.read(offset, data.length);
          for (let i = 0; i < old.length; i++) old[i]! |= data[i]!;
          await this.device.write(offset, old, { fua: cdb.fua });
        });
      case 'verify':
        return this.verify(cdb.lba, cdb.blocks, cdb.byteCheck, cdbBytes[0] === 0x2f ? 7 : cdbBytes[0] === 0xaf ? 6 : 10);
      case 'compareAndWrite':
        // NUMBER OF LOGICAL BLOCKS 0 moves nothing; with Data-Out announced, the CDB and the transfer disagree (a count above 255 wrapped).
        if (cdb.blocks === 0 && (expectedDataTransferLength ?? 0) > 0) return this.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 13 } });
        return this.compareAndWrite(cdb.lba, cdb.blocks, cdb.fua);
      case 'writeSame':
        // The Data-Out buffer is exactly one logical block (none with NDOB); an initiator announcing another size is refused (libiscsi WriteSame*.InvalidDataOutSize).
        if (expectedDataTransferLength !== undefined && expectedDataTransferLength !== (cdb.noDataOut ? 0 : g.blockSize)) return this.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb);
        return this.writeSame(cdb.lba, cdb.blocks, cdb.unmap, cdb.anchor, cdb.noDataOut, cdbBytes[0] === 0x41 ? 7 : 10);
      case 'reportSupportedOpcodes': {
        const data = reportSupportedOpcodes(SUPPORTED_COMMANDS.filter((c) => c.available?.(this.device) ?? true), cdb);
        if (!data) return this.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 2, bit: 2 } });
        return this.dataIn(data, cdb.allocationLength);
      }
      case 'preventAllow':
        // Not a removable medium (RMB=0): nothing to lock; PREVENT is accepted and has no effect (SBC-3 §5.11).
        return { kind: 'noData', run: async () => GOOD };
      case 'startStopUnit':
        if (cdb.powerCondition !== 0) return this.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 4, bit: 7 } });
        // A virtual disk has no motor and no medium to eject: START and STOP flush and complete (SBC-3 §5.25).
        return { kind: 'noData', run: () => this.guard(async () => (cdb.noFlush || g.readOnly ? GOOD : this.device.flush().then(() => GOOD))) };
      case 'reserve':
      case 'release':
        return { kind: 'noData', run: async () => this.reserveRelease(cdb.op) };
      case 'persistentReserveIn':
        return { kind: 'dataIn', run: async () => this.wrap(() => ({ status: ScsiStatus.good, data: cut(this.state.persistent.in(cdb.serviceAction), cdb.allocationLength) })) };
      case 'persistentReserveOut':
        return this.parameters(cdb.parameterListLength, async (params) => {
          const r = await this.state.persistent.out(this.prNexus, cdb.serviceAction, cdb.scope, cdb.type, params);
          return r === 'good' ? GOOD : RESERVATION_CONFLICT;
        });
      case 'unmap':
        if (!g.provisioning) return this.fail(SenseKey.illegalRequest, Asc.invalidCommandOperationCode, { field: { inCdb: true, byte: 0 } });
        return this.unmap(cdb.anchor, cdb.parameterListLength);
      case 'getLbaStatus':
        if (!g.provisioning) return this.fail(SenseKey.illegalRequest, Asc.invalidCommandOperationCode, { field: { inCdb: true, byte: 0 } });
        return this.getLbaStatus(cdb.lba, cdb.allocationLength);
      case 'unsupported':
        return this.fail(SenseKey.illegalRequest, Asc.invalidCommandOperationCode, { field: { inCdb: true, byte: 0 } });
    }
  }

  /** This session's I_T nexus as reservations name it. */
  private get nexusId(): string {
    return `${this.nexus.initiator ?? ''},i,0x${(this.nexus.isid ?? 0).toString(16).padStart(12, '0')}`;
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

  /** Range and transfer-length checks shared by the commands that write `blocks` blocks of Data-Out. */
  private writeLike(lba: bigint, blocks: number, lengthByte: number, apply: (offset: number, data: Buffer) => Promise<void>): CommandPlan {
    const bad = this.rangeCheck(lba, blocks) ?? this.lengthCheck(blocks, lengthByte);
    if (bad) return bad;
    if (this.geometry.readOnly) return this.fail(SenseKey.dataProtect, Asc.writeProtected);
    if (blocks === 0) return { kind: 'noData', run: async () => GOOD };
    const bs = this.geometry.blockSize;
    return {
      kind: 'dataOut',
      length: blocks * bs,
      run: (data) =>
        this.guard(async () => {
          const whole = Buffer.concat(wholeBlocks(data, bs));
          if (whole.length === 0) return GOOD;
          await this.locked(lba, whole.length / bs, () => apply(Number(lba) * bs, whole));
          return GOOD;
        }),
    };
  }

  private verify(lba: bigint, blocks: number, byteCheck: 0 | 1 | 3, lengthByte: number): CommandPlan {
    const bad = this.rangeCheck(lba, blocks) ?? this.lengthCheck(blocks, lengthByte);
    if (bad) return bad;
    const bs = this.geometry.blockSize;
    const offset = Number(lba) * bs;
    if (blocks === 0) return { kind: 'noData', run: async () => GOOD };
    // BYTCHK=0: the medium is checked by reading it (an I/O error becomes MEDIUM/HARDWARE ERROR).
    if (byteCheck === 0) return { kind: 'noData', run: () => this.guard(async () => (await this.device.read(offset, blocks * bs), GOOD)) };
    return {
      kind: 'dataOut',
      length: byteCheck === 1 ? blocks * bs : bs,
      run: (data) =>
        this.guard(async () => {
          const given = Buffer.concat(data as Buffer[]);
          if (given.length < (byteCheck === 1 ? blocks * bs : bs)) return this.check({ key: SenseKey.illegalRequest, ...Asc.parameterListLengthError });
          const medium = await this.device.read(offset, blocks * bs);
          for (let i = 0; i < blocks; i++) {
            const want = byteCheck === 1 ? given.subarray(i * bs, (i + 1) * bs) : given.subarray(0, bs);
            const at = firstDifference(medium.subarray(i * bs, (i + 1) * bs), want);
            if (at >= 0) throw miscompare(byteCheck === 1 ? i * bs + at : at);
          }
          return GOOD;
        }),
    };
  }

  /** COMPARE AND WRITE (SBC-3 §5.2): atomic under the range lock that every write to these blocks takes. */
  private compareAndWrite(lba: bigint, blocks: number, fua: boolean): CommandPlan {
    const bad = this.rangeCheck(lba, blocks);
    if (bad) return bad;
    if (blocks > (this.geometry.maxCompareAndWriteBlocks ?? 0)) return this.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 13 } });
    if (this.geometry.readOnly) return this.fail(SenseKey.dataProtect, Asc.writeProtected);
    if (blocks === 0) return { kind: 'noData', run: async () => GOOD };
    const bs = this.geometry.blockSize;
    const half = blocks * bs;
    return {
      kind: 'dataOut',
      length: 2 * half,
      run: (data) =>
        this.guard(async () => {
          const all = Buffer.concat(data as Buffer[]);
          if (all.length < 2 * half) return this.check({ key: SenseKey.illegalRequest, ...Asc.invalidFieldInCdb, field: { inCdb: true, byte: 13 } });
          const offset = Number(lba) * bs;
          return this.locked(lba, blocks, async () => {
            const current = await this.device.read(offset, half);
            const at = firstDifference(current, all.subarray(0, half));
            if (at >= 0) throw miscompare(at);
            await this.device.write(offset, all.subarray(half, 2 * half), { fua });
            return GOOD;
          });
        }),
    };
  }

  /** WRITE SAME 10/16 (SBC-3 §5.41-42): one block (or zeros with NDOB) repeated over the range. */
  private writeSame(lba: bigint, blocks: number, unmap: boolean, anchor: boolean, noDataOut: boolean, lengthByte: number): CommandPlan {
    const g = this.geometry;
    // ANCHOR: VPD B2h says ANC_SUP=0 (no anchored state), so it is refused with or without UNMAP (SBC-3 §5.42).
    if (anchor) return this.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 1, bit: 4 } });
    // UNMAP needs logical block provisioning (LBPWS); a fully provisioned unit refuses the bit.
    if (unmap && !g.provisioning) return this.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 1, bit: 3 } });
    if (blocks === 0) return this.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: lengthByte } });
    const bad = this.rangeCheck(lba, blocks);
    if (bad) return bad;
    if (blocks > (g.maxWriteSameBlocks ?? 0)) return this.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: lengthByte } });
    if (g.readOnly) return this.fail(SenseKey.dataProtect, Asc.writeProtected);
    const bs = g.blockSize;
    const fill = async (block: Buffer): Promise<ScsiResult> => {
      const offset = Number(lba) * bs;
      return this.locked(lba, blocks, async () => {
        const perChunk = Math.max(1, Math.floor(WRITE_SAME_CHUNK / bs));
        const chunk = Buffer.alloc(Math.min(blocks, perChunk) * bs);
        for (let i = 0; i < chunk.length; i += bs) block.copy(chunk, i);
        for (let done = 0; done < blocks; ) {
          const n = Math.min(perChunk, blocks - done);
          await this.device.write(offset + done * bs, chunk.subarray(0, n * bs));
          done += n;
        }
        return GOOD;
      });
    };
    // UNMAP=1 frees the range when what would be written is zeros: unmapped blocks read as zeros
    // (LBPRZ=1), so the result is the same data. Other data is written, as SBC-3 §5.42 requires
    // when unmapping could not return it.
    const deallocate = (): Promise<ScsiResult> => this.locked(lba, blocks, () => this.device.unmap(Number(lba) * bs, blocks * bs).then(() => GOOD));
    if (noDataOut) return { kind: 'noData', run: () => this.guard(() => (unmap ? deallocate() : fill(Buffer.alloc(bs)))) };
    return {
      kind: 'dataOut',
      length: bs,
      run: (data) =>
        this.guard(async () => {
          const block = Buffer.concat(data as Buffer[]);
          if (block.length < bs) return this.check({ key: SenseKey.illegalRequest, ...Asc.parameterListLengthError });
          return unmap && isZero(block.subarray(0, bs)) ? deallocate() : fill(block);
        }),
    };
  }

  /**
   * UNMAP (SBC-3 §5.28): the parameter list is checked whole (descriptor count, total blocks,
   * every range inside the unit) before the first hole is punched; then each range is
   * unmapped under the write lock of its blocks. ANCHOR is refused (ANC_SUP=0).
   */
  private unmap(anchor: boolean, parameterListLength: number): CommandPlan {
    const g = this.geometry;
    const p = g.provisioning!;
    if (anchor) return this.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 1, bit: 0 } });
    if (g.readOnly) return this.fail(SenseKey.dataProtect, Asc.writeProtected);
    const bs = g.blockSize;
    return this.parameters(parameterListLength, async (list) => {
      if (parameterListLength === 0) return GOOD; // nothing to unmap (SBC-3 §5.28.1)
      const decoded = decodeUnmapList(list, { capacity: g.blocks, maxDescriptors: p.maxUnmapDescriptors, maxBlocks: p.maxUnmapBlocks });
      if ('error' in decoded) {
        const e = decoded.error;
        if (e.kind === 'lengthError') return this.check({ key: SenseKey.illegalRequest, ...Asc.parameterListLengthError });
        if (e.kind === 'outOfRange') return this.check({ key: SenseKey.illegalRequest, ...Asc.lbaOutOfRange, information: e.lba });
        return this.check({ key: SenseKey.illegalRequest, ...Asc.invalidFieldInParameterList, field: { inCdb: false, byte: e.byte } });
      }
      for (const r of decoded.ranges) await this.locked(r.lba, r.blocks, () => this.device.unmap(Number(r.lba) * bs, r.blocks * bs));
      return GOOD;
    });
  }

  /**
   * GET LBA STATUS (SBC-3 §5.16): mapped / deallocated extents from `lba` to the end of the
   * unit, as many descriptors as the allocation length holds (at least one, at most
   * MAX_LBA_STATUS_DESCRIPTORS); the first starts at `lba`.
   */
  private getLbaStatus(lba: bigint, allocationLength: number): CommandPlan {
    const g = this.geometry;
    if (lba >= g.blocks) return this.fail(SenseKey.illegalRequest, Asc.lbaOutOfRange, { information: lba });
    const bs = g.blockSize;
    const fit = Math.floor((allocationLength - LBA_STATUS_HEADER_LENGTH) / LBA_STATUS_DESCRIPTOR_LENGTH);
    const max = Math.min(MAX_LBA_STATUS_DESCRIPTORS, Math.max(1, fit));
    const remaining = g.blocks - lba;
    const span = Number(remaining < BigInt(MAX_LBA_STATUS_BLOCKS) ? remaining : BigInt(MAX_LBA_STATUS_BLOCKS));
    return {
      kind: 'dataIn',
      run: () =>
        this.guard(async () => {
          const extents = await this.device.allocationStatus(Number(lba) * bs, span * bs, max);
          const descriptors = extents.map((e) => ({ lba: BigInt(e.offset / bs), blocks: e.length / bs, status: e.mapped ? ProvisioningStatus.mapped : ProvisioningStatus.deallocated }));
          return { status: ScsiStatus.good, data: cut(lbaStatusData(descriptors), allocationLength) };
        }),
    };
  }

  /**
   * MODE SELECT 6/10 (SPC-4 §6.9-10): the parameter list may set what MODE SENSE's changeable
   * values mark changeable (the control page's D_SENSE); anything else must match the
   * current values. Saving (SP=1) is not supported.
   */
  private modeSelect(ten: boolean, pageFormat: boolean, savePages: boolean, length: number): CommandPlan {
    if (savePages) return this.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 1, bit: 0 } });
    if (length === 0) return { kind: 'noData', run: async () => GOOD };
    if (!pageFormat) return this.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 1, bit: 4 } });
    return this.parameters(length, async (p) => {
      const change = parseModeSelect(p, ten, this.geometry, this.state.descriptorSense);
      if (typeof change === 'number') return this.check({ key: SenseKey.illegalRequest, ...Asc.invalidFieldInParameterList, field: { inCdb: false, byte: change } });
      if (change.descriptorSense !== undefined) this.state.descriptorSense = change.descriptorSense;
      return GOOD;
    });
  }

  /** A command with a parameter list of `length` bytes in Data-Out; `run` gets exactly what arrived. */
  private parameters(length: number, run: (params: Buffer) => Promise<ScsiResult>): CommandPlan {
    if (length === 0) return { kind: 'noData', run: () => this.guard(() => run(Buffer.alloc(0))) };
    return { kind: 'dataOut', length, run: (data) => this.guard(() => run(Buffer.concat(data as Buffer[]))) };
  }

  /** Runs `fn` holding the write lock of [lba, lba + blocks). */
  private async locked<T>(lba: bigint, blocks: number, fn: () => Promise<T>): Promise<T> {
    const release = await this.state.locks.acquire(lba, lba + BigInt(blocks));
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** Transfer lengths above MAX_TRANSFER_BYTES are refused (VPD B0h says so). */
  private lengthCheck(blocks: number, byte: number): CommandPlan | null {
    if (blocks * this.geometry.blockSize > MAX_TRANSFER_BYTES) return this.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte } });
    return null;
  }

  private wrap(fn: () => ScsiResult): ScsiResult {
    try {
      return fn();
    } catch (err) {
      if (isDisklessError(err, 'SCSI_CHECK_CONDITION')) return this.check(senseOf(err));
      throw err;
    }
  }

  /** CHECK CONDITION in the format the control mode page's D_SENSE selects. */
  private check(sense: Sense): ScsiResult {
    return checkResult(sense, this.state.descriptorSense);
  }

  private fail(key: number, asc: AscPair, extra: Partial<Sense> = {}): CommandPlan {
    return { kind: 'fail', result: this.check({ key, asc: asc.asc, ascq: asc.ascq, ...extra }) };
  }

  /** LBA + blocks within capacity, else LBA OUT OF RANGE (SBC-3 §4.5). */
  private rangeCheck(lba: bigint, blocks: number): CommandPlan | null {
    if (lba + BigInt(blocks) > this.geometry.blocks) return this.fail(SenseKey.illegalRequest, Asc.lbaOutOfRange, { information: lba });
    return null;
  }

  private dataIn(data: Buffer, allocationLength: number): CommandPlan {
    const out = cut(data, allocationLength);
    return { kind: 'dataIn', run: async () => ({ status: ScsiStatus.good, data: out }) };
  }

  /** Turns store errors into sense: out of range → LBA OUT OF RANGE, read-only → WRITE PROTECTED, I/O → MEDIUM/HARDWARE ERROR. */
  private async guard(fn: () => Promise<ScsiResult>): Promise<ScsiResult> {
    try {
      return await fn();
    } catch (err) {
      if (isDisklessError(err, 'STORE_OUT_OF_RANGE')) return this.check({ key: SenseKey.illegalRequest, ...Asc.lbaOutOfRange });
      if (isDisklessError(err, 'STORE_READ_ONLY')) return this.check({ key: SenseKey.dataProtect, ...Asc.writeProtected });
      if (isDisklessError(err, 'SCSI_CHECK_CONDITION')) return this.check(senseOf(err));
      if (isDisklessError(err, 'ISCSI_RESERVATIONS_FILE')) return this.check({ key: SenseKey.hardwareError, ...Asc.internalTargetFailure });
      if (isDisklessError(err, 'STORE_IO') || isDisklessError(err, 'STORE_CLOSED')) return this.check({ key: SenseKey.hardwareError, ...Asc.internalTargetFailure });
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
    return { kind: 'fail', result: checkResult({ key: SenseKey.illegalRequest, ...Asc.logicalUnitNotSupported }) };
  }
}
