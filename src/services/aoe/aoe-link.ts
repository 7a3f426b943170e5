import { AOE_HEADER_LENGTH } from '../../wire/aoe/aoe-header.js';
import { ATA_HEADER_LENGTH, SECTOR_SIZE } from '../../wire/aoe/ata-command.js';

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

/** Most sectors per ATA command an MTU carries: AoE and ATA headers, then whole sectors (1500 → 2, 9000 → 17), at most 255. */
export function sectorsPerFrame(mtu: number): number {
  return Math.max(0, Math.min(255, Math.floor((mtu - AOE_HEADER_LENGTH - ATA_HEADER_LENGTH) / SECTOR_SIZE)));
}
