/**
 * What every command planner of a LogicalUnit needs: its device, geometry and shared state,
 * and the checks and wrappers that turn failures into CHECK CONDITION plans or results
 * (range and transfer-length checks, store errors → sense, the range write lock). One per
 * LogicalUnit; the planners in data-path.ts and provisioning-commands.ts take it.
 */
import { isDisklessError } from '../../errors/index.js';
import type { BlockDevice } from '../../store/block-device.js';
import { Asc, ScsiStatus, SenseKey, type AscPair } from '../../wire/scsi/scsi-constants.js';
import { senseOf, type Sense } from '../../wire/scsi/sense.js';
import type { UnitGeometry } from '../../wire/scsi/scsi-data.js';
import { checkResult, cut, MAX_TRANSFER_BYTES, type CommandPlan, type ScsiResult } from './command-plan.js';
import type { UnitState } from './unit-state.js';

/** A logical unit's device, geometry and shared state, with the helpers its command planners share. */
export class UnitContext {
  constructor(
    readonly device: BlockDevice,
    readonly geometry: UnitGeometry,
    /** What every session of this device shares: locks, reservations, D_SENSE. */
    readonly state: UnitState,
  ) {}

  /** A command with a parameter list of `length` bytes in Data-Out; `run` gets exactly what arrived. */
  parameters(length: number, run: (params: Buffer) => Promise<ScsiResult>): CommandPlan {
    if (length === 0) return { kind: 'noData', run: () => this.guard(() => run(Buffer.alloc(0))) };
    return { kind: 'dataOut', length, run: (data) => this.guard(() => run(Buffer.concat(data as Buffer[]))) };
  }

  /** Runs `fn` holding the write lock of [lba, lba + blocks). */
  async locked<T>(lba: bigint, blocks: number, fn: () => Promise<T>): Promise<T> {
    const release = await this.state.locks.acquire(lba, lba + BigInt(blocks));
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** Transfer lengths above MAX_TRANSFER_BYTES are refused (VPD B0h says so). */
  lengthCheck(blocks: number, byte: number): CommandPlan | null {
    if (blocks * this.geometry.blockSize > MAX_TRANSFER_BYTES) return this.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte } });
    return null;
  }

  /** Runs a synchronous command body; a SCSI_CHECK_CONDITION it throws becomes CHECK CONDITION. */
  wrap(fn: () => ScsiResult): ScsiResult {
    try {
      return fn();
    } catch (err) {
      if (isDisklessError(err, 'SCSI_CHECK_CONDITION')) return this.check(senseOf(err));
      throw err;
    }
  }

  /** CHECK CONDITION in the format the control mode page's D_SENSE selects. */
  check(sense: Sense): ScsiResult {
    return checkResult(sense, this.state.descriptorSense);
  }

  /** A 'fail' plan with the given sense key, ASC/ASCQ and extra sense fields. */
  fail(key: number, asc: AscPair, extra: Partial<Sense> = {}): CommandPlan {
    return { kind: 'fail', result: this.check({ key, asc: asc.asc, ascq: asc.ascq, ...extra }) };
  }

  /** LBA + blocks within capacity, else LBA OUT OF RANGE (SBC-3 §4.5). */
  rangeCheck(lba: bigint, blocks: number): CommandPlan | null {
    if (lba + BigInt(blocks) > this.geometry.blocks) return this.fail(SenseKey.illegalRequest, Asc.lbaOutOfRange, { information: lba });
    return null;
  }

  /** A Data-In plan returning `data` cut to the allocation length. */
  dataIn(data: Buffer, allocationLength: number): CommandPlan {
    const out = cut(data, allocationLength);
    return { kind: 'dataIn', run: async () => ({ status: ScsiStatus.good, data: out }) };
  }

  /**
   * Turns store errors into sense: out of range → LBA OUT OF RANGE, read-only → WRITE
   * PROTECTED, corrupt data with no good copy → MEDIUM ERROR / UNRECOVERED READ ERROR
   * (03/11/00, SBC-3 §4.14; INFORMATION = the first bad LBA when the error's `data.offset`
   * says where), a full pool → DATA PROTECT / SPACE ALLOCATION FAILED WRITE PROTECT
   * (07/27/07, SBC-3 §4.7.3.6), I/O → HARDWARE ERROR.
   */
  async guard(fn: () => Promise<ScsiResult>): Promise<ScsiResult> {
    try {
      return await fn();
    } catch (err) {
      if (isDisklessError(err, 'STORE_OUT_OF_RANGE')) return this.check({ key: SenseKey.illegalRequest, ...Asc.lbaOutOfRange });
      if (isDisklessError(err, 'STORE_READ_ONLY')) return this.check({ key: SenseKey.dataProtect, ...Asc.writeProtected });
      if (isDisklessError(err, 'STORE_CORRUPT')) {
        const offset = err.data.offset;
        const information = typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0 ? { information: BigInt(Math.floor(offset / this.geometry.blockSize)) } : {};
        return this.check({ key: SenseKey.mediumError, ...Asc.unrecoveredReadError, ...information });
      }
      if (isDisklessError(err, 'STORE_NO_SPACE')) return this.check({ key: SenseKey.dataProtect, ...Asc.spaceAllocationFailedWriteProtect });
      if (isDisklessError(err, 'SCSI_CHECK_CONDITION')) return this.check(senseOf(err));
      if (isDisklessError(err, 'ISCSI_RESERVATIONS_FILE')) return this.check({ key: SenseKey.hardwareError, ...Asc.internalTargetFailure });
      if (isDisklessError(err, 'STORE_IO') || isDisklessError(err, 'STORE_CLOSED')) return this.check({ key: SenseKey.hardwareError, ...Asc.internalTargetFailure });
      throw err;
    }
  }
}
