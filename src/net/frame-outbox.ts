import type { RawSocket } from './raw-socket.js';

/**
 * Frames to send on one raw socket, gathered while the current batch of work runs and sent
 * together (RawSocket.sendMany: one sendmmsg) in a microtask queued by the first frame. A
 * server answering a batch of requests then wakes its peers once per batch, not once per
 * answer: on a veth pair each send also ran the receiver's wake-up, and the per-frame system
 * call and context switch cost more than reading the data. Frames go out in the order pushed;
 * a frame that fails (too big, queue full) does not stop the ones after it. Each frame's
 * `done` runs once it has gone out, with the error when it failed; its memory is free again.
 */
export class FrameOutbox {
  private frames: Buffer[] = [];
  private callbacks: Array<((err?: unknown) => void) | undefined> = [];
  private scheduled = false;

  constructor(private readonly socket: Pick<RawSocket, 'send' | 'sendMany'>) {}

  push(frame: Buffer, done?: (err?: unknown) => void): void {
    this.frames.push(frame);
    this.callbacks.push(done);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Sends everything queued now (also called by the queued microtask). */
  flush(): void {
    this.scheduled = false;
    const frames = this.frames;
    const callbacks = this.callbacks;
    if (frames.length === 0) return;
    this.frames = [];
    this.callbacks = [];
    const failed = new Map<number, unknown>();
    const many = this.socket.sendMany?.bind(this.socket);
    for (let i = 0; i < frames.length; ) {
      const batch = many !== undefined && frames.length - i > 1;
      try {
        if (batch) {
          many(i === 0 ? frames : frames.slice(i));
          i = frames.length;
        } else this.socket.send(frames[i++]!);
      } catch (err) {
        // sendMany says how many went out before the failing frame; send failed on its own frame
        const k = batch ? i + (((err as { data?: { sent?: unknown } }).data?.sent as number | undefined) ?? 0) : i - 1;
        failed.set(k, err);
        i = k + 1;
      }
    }
    for (let i = 0; i < callbacks.length; i++) callbacks[i]?.(failed.get(i));
  }
}
