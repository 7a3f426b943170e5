/**
 * Persistent reservations of one logical unit (SPC-4 §5.9): registrations per I_T nexus,
 * at most one reservation, the PRgeneration counter, the PERSISTENT RESERVE OUT service
 * actions (REGISTER, REGISTER AND IGNORE EXISTING KEY, RESERVE, RELEASE, CLEAR, PREEMPT,
 * PREEMPT AND ABORT) and the PERSISTENT RESERVE IN data (READ KEYS, READ RESERVATION,
 * REPORT CAPABILITIES, READ FULL STATUS). State survives restarts in a JSON file, written
 * to a temporary name, synced and renamed over the old one (atomic), before the command
 * that changed it completes. Only LU scope; no SPEC_I_PT, ALL_TG_PT or REGISTER AND MOVE.
 */
import { readFile } from 'node:fs/promises';
import { writeFileDurably } from '../../store/write-file-durably.js';
import { DisklessError } from '../../errors/index.js';
import { Asc, SenseKey } from '../../wire/scsi/scsi-constants.js';
import { checkCondition } from '../../wire/scsi/sense.js';

/** PERSISTENT RESERVE OUT service actions (SPC-4 §6.16.2). */
export const ProutAction = { register: 0, reserve: 1, release: 2, clear: 3, preempt: 4, preemptAndAbort: 5, registerAndIgnore: 6, registerAndMove: 7 } as const;
/** PERSISTENT RESERVE IN service actions (SPC-4 §6.15.1). */
export const PrinAction = { readKeys: 0, readReservation: 1, reportCapabilities: 2, readFullStatus: 3 } as const;
/** Reservation types (SPC-4 §6.15.3.4 table 172). */
export const PrType = { writeExclusive: 1, exclusiveAccess: 3, writeExclusiveRegistrantsOnly: 5, exclusiveAccessRegistrantsOnly: 6, writeExclusiveAllRegistrants: 7, exclusiveAccessAllRegistrants: 8 } as const;
const VALID_TYPES = new Set<number>(Object.values(PrType));

/** An I_T nexus as the reservation code sees it. */
export interface Nexus {
  /** `<initiator name>,i,0x<isid>`: the iSCSI initiator port name (SPC-4 §7.6.4.6). */
  readonly id: string;
  readonly relativeTargetPort: number;
}

interface Registration {
  readonly nexus: string;
  key: bigint;
  readonly relativeTargetPort: number;
}

/** The on-disk format (docs/iscsi.md). */
interface ReservationFile {
  readonly format: 'diskless-persistent-reservations';
  readonly version: 1;
  readonly generation: number;
  readonly registrations: readonly { nexus: string; key: string; relativeTargetPort: number }[];
  readonly reservation: { nexus: string; type: number } | null;
}

/** What a command may do under the current reservation (SPC-4 §5.9.1 table 59, simplified to read/write classes). */
export type AccessClass = 'read' | 'write' | 'always';

export class PersistentReservations {
  private generation = 0;
  private readonly registrations = new Map<string, Registration>();
  private reservation: { nexus: string; type: number } | null = null;
  private saving: Promise<void> = Promise.resolve();

  constructor(private readonly file: string | null) {}

  /** Loads `file`; a missing file is an empty state, a malformed one throws ISCSI_RESERVATIONS_FILE. */
  static async load(file: string): Promise<PersistentReservations> {
    const pr = new PersistentReservations(file);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return pr;
      throw new DisklessError('ISCSI_RESERVATIONS_FILE', `cannot read persistent reservations ${file}: ${(err as Error).message}`, { file }, { cause: err });
    }
    let data: ReservationFile;
    try {
      data = JSON.parse(text) as ReservationFile;
      if (data.format !== 'diskless-persistent-reservations' || data.version !== 1 || !Array.isArray(data.registrations) || !Number.isInteger(data.generation)) throw new Error('not a version 1 reservations file');
      for (const r of data.registrations) {
        if (typeof r.nexus !== 'string' || !/^[0-9a-f]{16}$/.test(r.key)) throw new Error('bad registration');
        pr.registrations.set(r.nexus, { nexus: r.nexus, key: BigInt(`0x${r.key}`), relativeTargetPort: Number(r.relativeTargetPort) || 1 });
      }
      if (data.reservation !== null && (typeof data.reservation?.nexus !== 'string' || !VALID_TYPES.has(data.reservation.type))) throw new Error('bad reservation');
      pr.reservation = data.reservation;
      pr.generation = data.generation >>> 0;
    } catch (err) {
      throw new DisklessError('ISCSI_RESERVATIONS_FILE', `cannot use persistent reservations ${file}: ${(err as Error).message}`, { file }, { cause: err });
    }
    return pr;
  }

  /** True when a persistent reservation exists (SPC-2 RESERVE then conflicts). */
  get reserved(): boolean {
    return this.reservation !== null;
  }

  /** Whether `nexus` may run a command of `access` class now (false: RESERVATION CONFLICT). */
  allows(nexus: string, access: AccessClass): boolean {
    const r = this.reservation;
    if (!r || access === 'always') return true;
    if (this.isHolder(nexus)) return true;
    const registered = this.registrations.has(nexus);
    switch (r.type) {
      case PrType.writeExclusive:
        return access === 'read';
      case PrType.exclusiveAccess:
        return false;
      case PrType.writeExclusiveRegistrantsOnly:
      case PrType.writeExclusiveAllRegistrants:
        return registered || access === 'read';
      default:
        return registered;
    }
  }

  private allRegistrants(): boolean {
    return this.reservation?.type === PrType.writeExclusiveAllRegistrants || this.reservation?.type === PrType.exclusiveAccessAllRegistrants;
  }

  private isHolder(nexus: string): boolean {
    if (!this.reservation) return false;
    return this.allRegistrants() ? this.registrations.has(nexus) : this.reservation.nexus === nexus;
  }

  /**
   * Runs one PERSISTENT RESERVE OUT. Returns 'conflict' for RESERVATION CONFLICT; throws
   * SCSI_CHECK_CONDITION for bad fields; resolves once the new state is on disk.
   */
  async out(nexus: Nexus, action: number, scope: number, type: number, params: Buffer): Promise<'good' | 'conflict'> {
    if (action === ProutAction.registerAndMove || action > ProutAction.registerAndMove) {
      throw checkCondition(SenseKey.illegalRequest, Asc.invalidFieldInCdb, `PERSISTENT RESERVE OUT service action ${action} is not supported`, { field: { inCdb: true, byte: 1, bit: 4 } });
    }
    if (params.length !== 24) throw checkCondition(SenseKey.illegalRequest, Asc.parameterListLengthError, `PERSISTENT RESERVE OUT parameter list is ${params.length} bytes, not 24`);
    const key = params.readBigUInt64BE(0);
    const sark = params.readBigUInt64BE(8);
    const flags = params[20]!;
    if (flags & 0x0c) throw checkCondition(SenseKey.illegalRequest, Asc.invalidFieldInParameterList, 'SPEC_I_PT and ALL_TG_PT are not supported', { field: { inCdb: false, byte: 20, bit: flags & 0x08 ? 3 : 2 } });
    const mine = this.registrations.get(nexus.id);
    const needsType = action === ProutAction.reserve || action === ProutAction.release || ((action === ProutAction.preempt || action === ProutAction.preemptAndAbort) && this.reservation !== null);
    if (needsType) {
      if (scope !== 0) throw checkCondition(SenseKey.illegalRequest, Asc.invalidFieldInCdb, `reservation scope ${scope} is not LU_SCOPE`, { field: { inCdb: true, byte: 2, bit: 7 } });
      if (!VALID_TYPES.has(type)) throw checkCondition(SenseKey.illegalRequest, Asc.invalidFieldInCdb, `reservation type ${type} is not supported`, { field: { inCdb: true, byte: 2, bit: 3 } });
    }
    if (action === ProutAction.register || action === ProutAction.registerAndIgnore) {
      if (action === ProutAction.register && (mine ? mine.key !== key : key !== 0n)) return 'conflict';
      if (!mine) {
        if (sark === 0n) return 'good';
        this.registrations.set(nexus.id, { nexus: nexus.id, key: sark, relativeTargetPort: nexus.relativeTargetPort });
      } else if (sark === 0n) {
        this.unregister(nexus.id);
      } else {
        mine.key = sark;
      }
      this.generation = (this.generation + 1) >>> 0;
      await this.save();
      return 'good';
    }
    // Every other action needs a registration with the matching key.
    if (!mine || mine.key !== key) return 'conflict';
    switch (action) {
      case ProutAction.reserve:
        if (this.reservation) return this.isHolder(nexus.id) && this.reservation.type === type ? 'good' : 'conflict';
        this.reservation = { nexus: nexus.id, type };
        break;
      case ProutAction.release:
        if (!this.reservation || !this.isHolder(nexus.id)) return 'good';
        if (this.reservation.type !== type) throw checkCondition(SenseKey.illegalRequest, Asc.invalidReleaseOfPersistentReservation, `RELEASE of type ${type} but the reservation is type ${this.reservation.type}`);
        this.reservation = null;
        break;
      case ProutAction.clear:
        this.registrations.clear();
        this.reservation = null;
        this.generation = (this.generation + 1) >>> 0;
        break;
      default: {
        // PREEMPT, PREEMPT AND ABORT (no task is ever queued here, so nothing is left to abort).
        const r = this.reservation;
        if (r && this.allRegistrants() && sark === 0n) {
          for (const id of [...this.registrations.keys()]) if (id !== nexus.id) this.registrations.delete(id);
          this.reservation = { nexus: nexus.id, type };
        } else {
          if (sark === 0n) throw checkCondition(SenseKey.illegalRequest, Asc.invalidFieldInParameterList, 'PREEMPT with SERVICE ACTION RESERVATION KEY 0', { field: { inCdb: false, byte: 8 } });
          const victims = [...this.registrations.values()].filter((g) => g.key === sark);
          if (victims.length === 0) return 'conflict';
          const holderKey = r && !this.allRegistrants() ? this.registrations.get(r.nexus)?.key : undefined;
          for (const v of victims) if (v.nexus !== nexus.id) this.registrations.delete(v.nexus);
          if (r && holderKey === sark) this.reservation = { nexus: nexus.id, type };
        }
        this.generation = (this.generation + 1) >>> 0;
      }
    }
    await this.save();
    return 'good';
  }

  private unregister(id: string): void {
    this.registrations.delete(id);
    const r = this.reservation;
    if (!r) return;
    if (this.allRegistrants()) {
      if (this.registrations.size === 0) this.reservation = null;
    } else if (r.nexus === id) this.reservation = null;
  }

  /** PERSISTENT RESERVE IN parameter data (before truncation to the allocation length). */
  in(action: number): Buffer {
    switch (action) {
      case PrinAction.readKeys: {
        const regs = [...this.registrations.values()];
        const b = Buffer.alloc(8 + 8 * regs.length);
        b.writeUInt32BE(this.generation, 0);
        b.writeUInt32BE(8 * regs.length, 4);
        regs.forEach((g, i) => b.writeBigUInt64BE(g.key, 8 + 8 * i));
        return b;
      }
      case PrinAction.readReservation: {
        const r = this.reservation;
        const b = Buffer.alloc(r ? 24 : 8);
        b.writeUInt32BE(this.generation, 0);
        if (r) {
          b.writeUInt32BE(16, 4);
          b.writeBigUInt64BE(this.allRegistrants() ? 0n : (this.registrations.get(r.nexus)?.key ?? 0n), 8);
          b[21] = r.type; // scope 0 (LU) in the high nibble
        }
        return b;
      }
      case PrinAction.reportCapabilities: {
        const b = Buffer.alloc(8);
        b.writeUInt16BE(8, 0);
        b[2] = 0x10 | 0x01; // CRH (RESERVE/RELEASE vs PR per SPC-4 §5.9.3), PTPL_C: kept across power loss
        b[3] = 0x80 | (0x1 << 4) | 0x01; // TMV, ALLOW COMMANDS 001b, PTPL_A (always persisted)
        b[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02; // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
        b[5] = 0x01; // EX_AC_AR
        return b;
      }
      case PrinAction.readFullStatus: {
        const descriptors = [...this.registrations.values()].map((g) => {
          const tid = transportId(g.nexus);
          const d = Buffer.alloc(24 + tid.length);
          d.writeBigUInt64BE(g.key, 0);
          const holder = this.isHolder(g.nexus);
          d[12] = holder ? 0x01 : 0;
          d[13] = holder ? this.reservation!.type : 0;
          d.writeUInt16BE(g.relativeTargetPort, 18);
          d.writeUInt32BE(tid.length, 20);
          tid.copy(d, 24);
          return d;
        });
        const body = Buffer.concat(descriptors);
        const head = Buffer.alloc(8);
        head.writeUInt32BE(this.generation, 0);
        head.writeUInt32BE(body.length, 4);
        return Buffer.concat([head, body]);
      }
      default:
        throw checkCondition(SenseKey.illegalRequest, Asc.invalidFieldInCdb, `PERSISTENT RESERVE IN service action ${action} is not supported`, { field: { inCdb: true, byte: 1, bit: 4 } });
    }
  }

  /** Writes the state (temporary file, fsync, rename); saves are serialised in call order. */
  private save(): Promise<void> {
    const file = this.file;
    if (!file) return Promise.resolve();
    const data: ReservationFile = {
      format: 'diskless-persistent-reservations',
      version: 1,
      generation: this.generation,
      registrations: [...this.registrations.values()].map((g) => ({ nexus: g.nexus, key: g.key.toString(16).padStart(16, '0'), relativeTargetPort: g.relativeTargetPort })),
      reservation: this.reservation,
    };
    const text = `${JSON.stringify(data, null, 2)}\n`;
    const next = this.saving.then(() => writeFileDurably(file, text, 0o600));
    this.saving = next.catch(() => undefined);
    return next.catch((err: unknown) => {
      throw new DisklessError('ISCSI_RESERVATIONS_FILE', `cannot save persistent reservations ${file}: ${(err as Error).message}`, { file }, { cause: err });
    });
  }
}

/** iSCSI TransportID, initiator port format (SPC-4 §7.6.4.6): FORMAT CODE 01b, protocol 5, "name,i,0x<isid>" NUL-padded to a multiple of 4. */
function transportId(nexus: string): Buffer {
  const name = Buffer.from(nexus, 'utf8');
  const len = (name.length + 1 + 3) & ~3;
  const b = Buffer.alloc(4 + len);
  b[0] = 0x40 | 0x05;
  b.writeUInt16BE(len, 2);
  name.copy(b, 4);
  return b;
}
