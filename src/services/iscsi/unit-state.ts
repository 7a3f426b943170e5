/**
 * State of one logical unit shared by every session that reaches its BlockDevice: the
 * range locks that make COMPARE AND WRITE and ORWRITE atomic against concurrent writes, the
 * SPC-2 RESERVE holder, the control mode page's D_SENSE, and the persistent reservations
 * (reservations.ts). One `UnitState` per device, looked up by identity (`unitStateOf`);
 * whoever opens a device may attach a reservation file to it first (`attachReservationFile`).
 */
import type { BlockDevice } from '../../store/block-device.js';
import { PersistentReservations } from './persistent-reservations.js';

/** Exclusive locks on half-open block ranges; an acquire waits for every overlapping holder. */
export class RangeLock {
  private readonly held = new Set<{ start: bigint; end: bigint; done: Promise<void> }>();

  async acquire(start: bigint, end: bigint): Promise<() => void> {
    for (;;) {
      const clash = [...this.held].find((h) => h.start < end && start < h.end);
      if (!clash) break;
      await clash.done;
    }
    let release!: () => void;
    const entry = { start, end, done: new Promise<void>((r) => (release = r)) };
    this.held.add(entry);
    return () => {
      this.held.delete(entry);
      release();
    };
  }
}

export class UnitState {
  readonly locks = new RangeLock();
  /** I_T nexus holding an SPC-2 RESERVE (6)/(10), if any. */
  spc2Holder: string | null = null;
  /** Control mode page D_SENSE: sense data in descriptor format. */
  descriptorSense = false;
  persistent: PersistentReservations = new PersistentReservations(null);
}

const states = new WeakMap<BlockDevice, UnitState>();

/** The shared state of `device`, created on first use. */
export function unitStateOf(device: BlockDevice): UnitState {
  let s = states.get(device);
  if (!s) {
    s = new UnitState();
    states.set(device, s);
  }
  return s;
}

/**
 * Keeps `device`'s persistent reservations in `file` (loaded now, rewritten atomically on
 * every change). Call before the device is served; a bad file throws ISCSI_RESERVATIONS_FILE.
 */
export async function attachReservationFile(device: BlockDevice, file: string): Promise<void> {
  unitStateOf(device).persistent = await PersistentReservations.load(file);
}
