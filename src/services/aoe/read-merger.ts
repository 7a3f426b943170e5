import { SECTOR_SIZE } from '../../wire/aoe/ata-command.js';

/** What the merger reads through (SectorIo). */
export interface SectorReader {
  read(lba: number, target: Buffer): Promise<void>;
}

interface PendingRead {
  readonly lba: number;
  readonly target: Buffer;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Merges the sector reads of one turn of the event loop, as a block layer's scheduler merges
 * adjacent requests: an initiator with many commands in flight (iPXE, Linux, our own) reads
 * a file 1-17 sectors per command, so a batch of frames holds runs of adjacent reads. Each
 * run (up to `maxBytes`) becomes one device read into a scratch buffer, copied out to every
 * request's target; a lone read goes straight to its target. The reads are issued when the
 * turn's requests have all been seen (a microtask), or at once by `flush()` (a write must not
 * overtake a read that arrived before it). A merged read that fails is retried request by
 * request, so each gets its own error (a bad checksum in one sector fails only the commands
 * that cover it). Reads are no older than they would have been one by one: nothing is cached.
 */
export class ReadMerger {
  private pending: PendingRead[] = [];
  private scheduled = false;

  constructor(
    private readonly io: SectorReader,
    private readonly maxBytes = 128 * 1024,
  ) {}

  /** Fills `target` (whole sectors) from sector `lba`. */
  read(lba: number, target: Buffer): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ lba, target, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        queueMicrotask(() => this.flush());
      }
    });
  }

  /** Issues every read queued so far. */
  flush(): void {
    this.scheduled = false;
    const reads = this.pending;
    if (reads.length === 0) return;
    this.pending = [];
    reads.sort((a, b) => a.lba - b.lba);
    let run: PendingRead[] = [];
    let runEnd = 0;
    for (const r of reads) {
      const end = r.lba + r.target.length / SECTOR_SIZE;
      if (run.length > 0 && r.lba <= runEnd && (Math.max(runEnd, end) - run[0]!.lba) * SECTOR_SIZE <= this.maxBytes) {
        run.push(r);
        runEnd = Math.max(runEnd, end);
        continue;
      }
      if (run.length > 0) this.issue(run, runEnd);
      run = [r];
      runEnd = end;
    }
    this.issue(run, runEnd);
  }

  private issue(run: PendingRead[], end: number): void {
    if (run.length === 1) {
      const r = run[0]!;
      this.io.read(r.lba, r.target).then(r.resolve, r.reject);
      return;
    }
    const start = run[0]!.lba;
    const scratch = Buffer.allocUnsafe((end - start) * SECTOR_SIZE);
    this.io.read(start, scratch).then(
      () => {
        for (const r of run) {
          scratch.copy(r.target, 0, (r.lba - start) * SECTOR_SIZE, (r.lba - start) * SECTOR_SIZE + r.target.length);
          r.resolve();
        }
      },
      () => {
        for (const r of run) this.io.read(r.lba, r.target).then(r.resolve, r.reject);
      },
    );
  }
}
