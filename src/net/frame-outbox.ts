import type { RawSocket } from './raw-socket.js';

/**
 * Frames to send on one raw socket, gathered while the current batch of work runs and sent
 * together (RawSocket.sendMany: one sendmmsg) in a microtask queued by the first frame. A
 * server answering a batch of requests then wakes its peers once per batch, not once per
 * answer: on a veth pair each send also ran the receiver's wake-up, and the per-frame
 * system call and context switch cost more than reading the data. Frames go out in the order
 * pushed. Each frame's `sent` callback runs once it has gone out or failed (its memory is free
 * again); failures go to `onError` with the number of frames lost.
 */
export class FrameOutbox {
  private frames: Buffer[] = [];
  private callbacks: Array<(() => void) | undefined> = [];
  private scheduled = false;

  constructor(
    private readonly socket: Pick<RawSocket, 'send' | 'sendMany'>,
    private readonly onError: (err: unknown, lost: number) => void,
  ) {}

  push(frame: Buffer, sent?: () => void): void {
    this.frames.push(frame);
    this.callbacks.push(sent);
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
    try {
      if (this.socket.sendMany && frames.length > 1) this.socket.sendMany(frames);
      else for (const f of frames) this.socket.send(f);
    } catch (err) {
      const sent = ((err as { data?: { sent?: unknown } }).data?.sent as number | undefined) ?? 0;
      this.onError(err, frames.length - sent);
    } finally {
      for (const cb of callbacks) cb?.();
    }
  }
}
