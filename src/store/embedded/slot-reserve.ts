import type { ExtentIo } from './extent-files.js';

/** How far ahead of use the data file's blocks are reserved: at first, and at most. */
const RESERVE_BYTES = 32 * 1024 * 1024;
const RESERVE_MAX_BYTES = 1024 * 1024 * 1024;

/**
 * Reserves the data file's blocks ahead of the slots being handed out (ExtentIo `reserve`,
 * fallocate KEEP_SIZE), in the background: 32 MiB at first, doubling up to 1 GiB whenever
 * writes outrun the reserve. Stops trying where the file system cannot.
 */
export class SlotReserve {
  /** Slots below this have disk blocks reserved (or were handed out before this process). */
  private reservedTo = 0;
  private slots: number;
  private running: Promise<void> | undefined;

  constructor(
    private readonly files: ExtentIo,
    private readonly extentSize: number,
    private readonly maxSlots: number,
  ) {
    this.slots = Math.max(1, Math.floor(RESERVE_BYTES / extentSize));
  }

  /** Called as slot `next` (from the end of the data file) is handed out. */
  onAllocate(next: number): void {
    if (next + this.slots / 2 < this.reservedTo) return;
    if (next >= this.reservedTo && this.reservedTo > 0) this.slots = Math.min(this.slots * 2, Math.max(1, Math.floor(RESERVE_MAX_BYTES / this.extentSize)));
    if (this.running || !this.files.reserve) return;
    const from = Math.max(this.reservedTo, next);
    const to = Math.min(from + this.slots, this.maxSlots);
    if (to <= from) return;
    this.reservedTo = to;
    this.running = this.files.reserve(from * this.extentSize, (to - from) * this.extentSize).then((ok) => {
      this.running = undefined;
      if (!ok) this.reservedTo = Number.MAX_SAFE_INTEGER; // not supported here: never try again
    });
  }

  /** Settles when no reservation is running (the pool closes its files after). */
  async idle(): Promise<void> {
    await this.running;
  }
}
