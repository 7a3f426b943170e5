import type { BlockDevice } from '../../store/block-device.js';
import { SECTOR_SIZE } from '../../wire/aoe/ata-command.js';

/**
 * 512-byte sector I/O on a BlockDevice of any block size. AoE addresses 512-byte sectors;
 * a volume with 4096-byte blocks gets whole covering blocks read (and, for a partial write,
 * read, patched and written back under a per-block lock, so two partial writes to one block
 * — or a whole-block write racing a partial one — cannot undo each other). On 512-byte
 * devices every call goes straight through.
 */
export class SectorIo {
  private readonly locks = new Map<number, Promise<void>>();

  constructor(private readonly device: BlockDevice) {}

  /** Fills `target` (sectors × 512 bytes) from sector `lba`. */
  async read(lba: number, target: Buffer): Promise<void> {
    const bs = this.device.blockSize;
    const offset = lba * SECTOR_SIZE;
    if (offset % bs === 0 && target.length % bs === 0) return this.device.readInto(offset, target);
    const first = Math.floor(offset / bs) * bs;
    const end = Math.ceil((offset + target.length) / bs) * bs;
    const whole = Buffer.allocUnsafe(end - first);
    await this.device.readInto(first, whole);
    whole.copy(target, 0, offset - first, offset - first + target.length);
  }

  /** Writes `data` (sectors × 512 bytes) at sector `lba`. */
  async write(lba: number, data: Buffer, fua: boolean): Promise<void> {
    const bs = this.device.blockSize;
    const offset = lba * SECTOR_SIZE;
    if (bs === SECTOR_SIZE) return this.device.write(offset, data, { fua });
    const firstBlock = Math.floor(offset / bs);
    const endBlock = Math.ceil((offset + data.length) / bs);
    await this.locked(firstBlock, endBlock, async () => {
      if (offset % bs === 0 && data.length % bs === 0) return this.device.write(offset, data, { fua });
      const whole = Buffer.allocUnsafe((endBlock - firstBlock) * bs);
      await this.device.readInto(firstBlock * bs, whole);
      data.copy(whole, offset - firstBlock * bs);
      await this.device.write(firstBlock * bs, whole, { fua });
    });
  }

  /** Runs `work` once no earlier locked call holds any of blocks [first, end). */
  private async locked(first: number, end: number, work: () => Promise<void>): Promise<void> {
    const before: Promise<void>[] = [];
    for (let b = first; b < end; b++) {
      const p = this.locks.get(b);
      if (p) before.push(p);
    }
    const done = Promise.all(before).then(work);
    const mine = done.catch(() => undefined);
    for (let b = first; b < end; b++) this.locks.set(b, mine);
    try {
      await done;
    } finally {
      for (let b = first; b < end; b++) if (this.locks.get(b) === mine) this.locks.delete(b);
    }
  }
}
