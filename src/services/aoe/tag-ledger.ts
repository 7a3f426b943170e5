/**
 * The tags one AoE target has seen (AoE r11 §1.1: an initiator retransmits a request with its
 * tag when the answer is late). A request whose tag is still being executed is dropped (its
 * answer is on the way); a write whose answer was already sent is answered again from here,
 * not executed twice — the same tag, address, count and data (by CRC32C) must match, so a tag
 * an initiator reuses for other data is a new request. Reads are simply executed again.
 * Answers are kept for `ttlMs` and at most `capacity` of them, oldest dropped first.
 */
export class TagLedger {
  private readonly running = new Set<string>();
  private readonly answered = new Map<string, { fingerprint: string; frame: Buffer; at: number }>();

  constructor(
    private readonly capacity: number,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The ledger key of a request: initiator MAC (text, or its 48-bit number) and tag. */
  static key(source: string | number, tag: number): string {
    return `${source}/${tag}`;
  }

  isRunning(key: string): boolean {
    return this.running.has(key);
  }

  begin(key: string): void {
    this.running.add(key);
  }

  /** Ends a request; with `answer`, keeps the frame sent for a retransmit of the same request. */
  finish(key: string, answer?: { fingerprint: string; frame: Buffer }): void {
    this.running.delete(key);
    if (!answer) return;
    this.answered.delete(key);
    this.answered.set(key, { ...answer, at: this.now() });
    if (this.answered.size > this.capacity) this.answered.delete(this.answered.keys().next().value!);
  }

  /** The answer already sent to this request, if it is the same request and recent. */
  replay(key: string, fingerprint: string): Buffer | undefined {
    const a = this.answered.get(key);
    if (!a) return undefined;
    if (this.now() - a.at > this.ttlMs) {
      this.answered.delete(key);
      return undefined;
    }
    return a.fingerprint === fingerprint ? a.frame : undefined;
  }
}
