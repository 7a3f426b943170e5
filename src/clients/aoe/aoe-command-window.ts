/**
 * The initiator's tag bookkeeping as a pure state machine (no sockets, no timers: the caller
 * passes `now` and does the sending): which commands wait, which are in flight under which
 * tag, when each times out, and how often each was sent. AoeInitiator owns one per target.
 *
 * AoE r11 §2.6 leaves the tag to the initiator and has the target echo it; a retransmission
 * reuses the tag so a target can recognise it and the first answer completes the command
 * whichever copy it answers. Answers for tags no longer in flight (the second answer to a
 * retransmitted command, answers after a give-up) are the caller's to count and drop.
 */

/**
 * A producer of commands, asked one at a time as the window opens: a 1 GiB read is one source
 * that makes its 2-sector commands lazily instead of a million queued objects. `next()` returns
 * undefined when it has nothing more (finished, or failed and withdrawing the rest).
 */
export interface CommandSource<T> {
  next(): T | undefined;
}

/** One command in flight. `tag` and `tries` change only through the window. */
export interface InFlight<T> {
  readonly command: T;
  readonly tag: number;
  /** Sends so far: 1 after the first, +1 per retransmission. */
  tries: number;
  /** When (the caller's clock, ms) the current try times out. */
  deadline: number;
}

export interface AoeCommandWindowOptions {
  /** Most commands in flight at once: min(the target's Buffer Count, the initiator's cap). At least 1. */
  readonly limit: number;
  /** How long one try waits for its answer, in the caller's clock unit (ms). */
  readonly timeoutMs: number;
  /** Sends per command before giving up, the first included. At least 1. */
  readonly tries: number;
  /** The first tag handed out; the counter then counts up modulo 2^32. */
  readonly firstTag: number;
}

/** Tags of the 32-bit Tag field (AoE r11 §2.6). */
const TAG_MODULUS = 2 ** 32;

export class AoeCommandWindow<T> {
  private readonly sources: CommandSource<T>[] = [];
  private readonly flight = new Map<number, InFlight<T>>();
  private tagCounter: number;
  private windowLimit: number;
  private readonly timeoutMs: number;
  private readonly maxTries: number;
  /** Highest number of commands ever in flight at once (pipelining depth actually reached). */
  maxInFlight = 0;

  constructor(options: AoeCommandWindowOptions) {
    this.windowLimit = Math.max(1, Math.floor(options.limit));
    this.timeoutMs = options.timeoutMs;
    this.maxTries = Math.max(1, Math.floor(options.tries));
    this.tagCounter = options.firstTag >>> 0;
  }

  /** The current window (commands allowed in flight). */
  get limit(): number {
    return this.windowLimit;
  }

  /** Changes the window, e.g. once Query Config told the target's Buffer Count. Commands already in flight stay. */
  setLimit(limit: number): void {
    this.windowLimit = Math.max(1, Math.floor(limit));
  }

  get inFlight(): number {
    return this.flight.size;
  }

  /** Sources still holding unsent commands (a source leaves once its `next()` returned undefined). */
  get waitingSources(): number {
    return this.sources.length;
  }

  /**
   * A fresh tag not in flight. The window calls it for every command it starts; callers that
   * send outside the window (discovery broadcasts) take theirs here too so tags never clash.
   */
  allocateTag(): number {
    for (;;) {
      const tag = this.tagCounter;
      this.tagCounter = (this.tagCounter + 1) % TAG_MODULUS;
      if (!this.flight.has(tag)) return tag;
    }
  }

  /** Queues a source behind the others (FIFO: a source's commands all start before the next source's). */
  enqueue(source: CommandSource<T>): void {
    this.sources.push(source);
  }

  /** Withdraws a queued source (its in-flight commands stay until answered or given up). */
  withdraw(source: CommandSource<T>): void {
    const i = this.sources.indexOf(source);
    if (i >= 0) this.sources.splice(i, 1);
  }

  /**
   * Starts commands while the window has room and sources have commands: each gets a tag and
   * the deadline `now + timeoutMs`, then `send` is called with it (the first try). Returns how
   * many started.
   */
  fill(now: number, send: (entry: InFlight<T>) => void): number {
    let started = 0;
    while (this.flight.size < this.windowLimit && this.sources.length > 0) {
      const command = this.sources[0]!.next();
      if (command === undefined) {
        this.sources.shift();
        continue;
      }
      const entry: InFlight<T> = { command, tag: this.allocateTag(), tries: 1, deadline: now + this.timeoutMs };
      this.flight.set(entry.tag, entry);
      if (this.flight.size > this.maxInFlight) this.maxInFlight = this.flight.size;
      started++;
      send(entry);
    }
    return started;
  }

  /** The in-flight command with `tag`, left in flight (the caller checks the answer's source first). */
  get(tag: number): InFlight<T> | undefined {
    return this.flight.get(tag);
  }

  /** Takes the command with `tag` out of flight (its answer arrived); undefined when none is (a stale answer). */
  complete(tag: number): InFlight<T> | undefined {
    const entry = this.flight.get(tag);
    if (entry) this.flight.delete(tag);
    return entry;
  }

  /**
   * Handles every try whose deadline is at or before `now`: a command with tries left gets
   * `tries + 1`, a new deadline and `retransmit` (send it again, same tag); one without is
   * taken out of flight and handed to `exhausted`.
   */
  expire(now: number, retransmit: (entry: InFlight<T>) => void, exhausted: (entry: InFlight<T>) => void): void {
    const due: InFlight<T>[] = [];
    for (const entry of this.flight.values()) if (entry.deadline <= now) due.push(entry);
    for (const entry of due) {
      if (entry.tries >= this.maxTries) {
        this.flight.delete(entry.tag);
        exhausted(entry);
      } else {
        entry.tries++;
        entry.deadline = now + this.timeoutMs;
        retransmit(entry);
      }
    }
  }

  /** The earliest deadline in flight, or undefined when nothing is (the caller's timer can stop). */
  nextDeadline(): number | undefined {
    let next: number | undefined;
    for (const entry of this.flight.values()) if (next === undefined || entry.deadline < next) next = entry.deadline;
    return next;
  }

  /** Empties the window (close): returns what was in flight; queued sources are dropped. */
  clear(): InFlight<T>[] {
    const entries = [...this.flight.values()];
    this.flight.clear();
    this.sources.length = 0;
    return entries;
  }
}
