/**
 * Writes in flight against a pool, and the barrier a commit puts up: `exclusive` waits until
 * no write is in flight, holds new ones back while its function runs (capturing one
 * consistent transaction group), then lets them through.
 */
export class WriteGate {
  private inflight = 0;
  private barrier: Promise<void> | undefined;
  private drained: (() => void) | undefined;

  /** True when no barrier is up: a synchronous write may run now. */
  get open(): boolean {
    return this.barrier === undefined;
  }

  /** Waits out a barrier, then counts one write in flight. */
  async enter(): Promise<void> {
    while (this.barrier) await this.barrier;
    this.inflight++;
  }

  leave(): void {
    if (--this.inflight === 0 && this.drained) this.drained();
  }

  /** Runs `fn` (and waits for it, when it returns a promise) with no write in flight and new writes held back. */
  async exclusive<T>(fn: () => T | Promise<T>): Promise<T> {
    while (this.barrier) await this.barrier;
    let release!: () => void;
    this.barrier = new Promise<void>((r) => (release = r));
    try {
      if (this.inflight > 0) await new Promise<void>((r) => (this.drained = r));
      this.drained = undefined;
      return await fn();
    } finally {
      this.barrier = undefined;
      release();
    }
  }
}
