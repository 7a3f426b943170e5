/**
 * Answer frames reused once sent. `send` copies a frame into the kernel, so the buffer is free
 * again as soon as it returns: a target answering reads keeps at most `keep` frames of each
 * length warm instead of allocating (and later collecting) one per answer — a fresh 8.7 KiB
 * jumbo answer cost more in allocation, cache misses and GC than its read.
 */
export class FramePool {
  private readonly free = new Map<number, Buffer[]>();

  constructor(private readonly keep: number) {}

  /** A frame of exactly `length` bytes, contents undefined. */
  take(length: number): Buffer {
    return this.free.get(length)?.pop() ?? Buffer.allocUnsafeSlow(length);
  }

  /** Returns a frame no one holds any more (sent, or not needed). */
  give(frame: Buffer): void {
    let stack = this.free.get(frame.length);
    if (!stack) this.free.set(frame.length, (stack = []));
    if (stack.length < this.keep) stack.push(frame);
  }
}
