/**
 * One lock per (layer, extent): a write's read-modify-write of an extent, a read's repair of
 * a bad block and scrub's check of an extent never overlap on the same extent. Reads that
 * check out take no lock.
 */
export class ExtentLocks {
  private readonly held = new Map<number, Promise<void>>();

  /** Whether someone holds the extent's lock (a synchronous write leaves it to the async path then). */
  isHeld(layer: number, index: number): boolean {
    return this.held.has(layer * 0x1_0000_0000 + index);
  }

  /** Resolves with the release function once the extent is free. */
  async lock(layer: number, index: number): Promise<() => void> {
    const key = layer * 0x1_0000_0000 + index;
    while (this.held.has(key)) await this.held.get(key);
    let release!: () => void;
    this.held.set(key, new Promise<void>((r) => (release = r)));
    return () => {
      this.held.delete(key);
      release();
    };
  }
}
