/** One interface an AoE target is served on, as the target sees it. */
export interface AoeLink {
  readonly ifname: string;
  /** The interface's MAC: the source of every answer. */
  readonly mac: Buffer;
  /** Sectors one ATA command may carry on this link (from its MTU). */
  readonly maxSectors: number;
  /**
   * Queues one whole Ethernet frame (sent with the rest of the current batch). `recycle`: the
   * pool the frame goes back to once sent.
   */
  send(frame: Buffer, recycle?: { give(frame: Buffer): void }): void;
}
