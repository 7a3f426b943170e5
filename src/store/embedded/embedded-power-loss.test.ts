import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { EmbeddedStorageDriver } from './embedded-storage-driver.js';
import type { Copy, ExtentIo } from './extent-files.js';

/**
 * Power loss, simulated where it matters: the kernel's page cache. A kill -9 keeps every
 * write the process made (the crash tests in test/crash do that through iSCSI); a power cut
 * keeps only what was fdatasync'd. This wrapper around the real data files forwards every
 * call and also applies writes to "platter" copies of the files only when datasync is called:
 * at the cut, the platter copies plus the LMDB environment as last committed (LMDB makes its
 * own commits durable before they count) are what the machine boots with. Cuts happen
 * between operations and inside a commit, after the data sync and before the metadata
 * transaction — the window an ordering or overwrite-in-place mistake would corrupt.
 */
class PowerCutFiles implements ExtentIo {
  private pending: { position: number; data: Buffer; only: Copy | undefined }[] = [];
  private syncs = 0;
  off = false;
  /** Syncs are counted toward `cutAtSync` only once armed (after the volume is created). */
  armed = false;

  constructor(
    private readonly real: ExtentIo,
    private readonly platter: { primary: string; mirror: string | undefined },
    private readonly cutAtSync: number | undefined,
  ) {}

  get mirrored(): boolean {
    return this.real.mirrored;
  }
  get primaryPath(): string {
    return this.real.primaryPath;
  }
  get mirrorPath(): string | undefined {
    return this.real.mirrorPath;
  }

  private check(): void {
    if (this.off) throw new Error('the power is off');
  }

  read(copy: Copy, position: number, target: Buffer): Promise<void> {
    this.check();
    return this.real.read(copy, position, target);
  }

  async write(position: number, data: Buffer | readonly Buffer[], only?: Copy): Promise<void> {
    this.check();
    const copy = Buffer.concat(Buffer.isBuffer(data) ? [data] : [...data]);
    await this.real.write(position, data, only);
    this.pending.push({ position, data: copy, only });
  }

  private syncWrites = 0;

  /** Every other synchronous write is refused, so the pool's async write path is cut too. */
  writeSync(position: number, data: Buffer): boolean {
    if (this.off || !this.real.writeSync || this.syncWrites++ % 2 === 1) return false;
    if (!this.real.writeSync(position, data)) return false;
    this.pending.push({ position, data: Buffer.from(data), only: undefined });
    return true;
  }

  async datasync(): Promise<void> {
    this.check();
    const synced = this.pending;
    this.pending = [];
    await this.real.datasync();
    for (const w of synced) {
      if (w.only !== 'mirror') pwrite(this.platter.primary, w.position, w.data);
      if (this.platter.mirror !== undefined && w.only !== 'primary') pwrite(this.platter.mirror, w.position, w.data);
    }
    if (this.armed && ++this.syncs === this.cutAtSync) {
      this.off = true;
      throw new Error('power cut between the data sync and the metadata commit');
    }
  }

  close(): Promise<void> {
    return this.real.close();
  }
}

function pwrite(path: string, position: number, data: Buffer): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, data, 0, data.length, position);
  } finally {
    closeSync(fd);
  }
}

const SIZE = 512 * 1024;
const BS = 512;

/** Block content: write number and block index stamped at the start, then a fill byte. */
function stamp(seq: number, lba: number, blocks: number): Buffer {
  const b = Buffer.alloc(blocks * BS, seq & 0xff);
  for (let i = 0; i < blocks; i++) {
    b.writeUInt32LE(seq, i * BS);
    b.writeUInt32LE(lba + i, i * BS + 4);
  }
  return b;
}

type Op = { kind: 'write'; block: number; blocks: number } | { kind: 'flush' } | { kind: 'snapshot' } | { kind: 'fua'; block: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('write' as const), block: fc.nat(SIZE / BS - 1), blocks: fc.integer({ min: 1, max: 160 }) }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'flush' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'snapshot' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('fua' as const), block: fc.nat(SIZE / BS - 1) }) },
);

test('power loss: flushed and FUA writes survive, unflushed blocks are old or new (never torn), scrub is clean, snapshots are whole or absent', async () => {
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 4, maxLength: 40 }), fc.nat(40), fc.option(fc.integer({ min: 1, max: 12 }), { nil: undefined }), fc.boolean(), async (ops, cutAfter, cutAtSync, mirrored) => {
      const dir = mkdtempSync(join(tmpdir(), `emb-power-${run++}-`));
      const pool = join(dir, 'pool');
      const mirror = mirrored ? join(dir, 'mirror') : undefined;
      const platter = { primary: join(dir, 'platter-primary'), mirror: mirrored ? join(dir, 'platter-mirror') : undefined };
      let files: PowerCutFiles | undefined;
      const d = await EmbeddedStorageDriver.open({
        pool,
        ...(mirror ? { mirror } : {}),
        extentSize: 16384,
        commitIntervalMs: 3_600_000,
        wrapFiles: (real) => (files = new PowerCutFiles(real, platter, cutAtSync)),
      });
      closeSync(openSync(platter.primary, 'w'));
      if (platter.mirror) closeSync(openSync(platter.mirror, 'w'));
      // allowed[block]: write numbers the block may hold after the cut (0: never written, zeros).
      const allowed: Set<number>[] = Array.from({ length: SIZE / BS }, () => new Set([0]));
      const current = new Array<number>(SIZE / BS).fill(0);
      const snaps: { name: string; blocks: number[] }[] = [];
      try {
        await d.create('v', { size: SIZE });
        await d.open('v').then((x) => x.flush().then(() => x.close())); // the volume itself is durable before the workload
        const dev = await d.open('v');
        files!.armed = true;
        let seq = 0;
        for (const [i, op] of ops.entries()) {
          if (i === cutAfter) break;
          try {
            if (op.kind === 'write' || op.kind === 'fua') {
              const blocks = op.kind === 'fua' ? 1 : Math.min(op.blocks, SIZE / BS - op.block);
              const s = ++seq;
              await dev.write(op.block * BS, stamp(s, op.block, blocks), { fua: op.kind === 'fua' });
              for (let b = op.block; b < op.block + blocks; b++) {
                current[b] = s;
                allowed[b]!.add(s);
              }
              if (op.kind === 'fua') for (let b = 0; b < allowed.length; b++) allowed[b] = new Set([current[b]!]); // FUA commits everything before it
            } else if (op.kind === 'flush') {
              await dev.flush();
              for (let b = 0; b < allowed.length; b++) allowed[b] = new Set([current[b]!]);
            } else {
              const name = `s${i}`;
              await d.snapshot('v', name);
              snaps.push({ name, blocks: [...current] });
              for (let b = 0; b < allowed.length; b++) allowed[b] = new Set([current[b]!]);
            }
          } catch (err) {
            if (!files?.off) throw err;
            break; // the power went off inside this operation: it did not complete
          }
        }
        if (files) files.off = true;
      } finally {
        await d.close().catch(() => undefined); // the pool is stopped; this only releases handles and the lock
      }
      // Boot the "machine" from what the disk held at the cut.
      const after = join(dir, 'after');
      mkdirSync(after);
      cpSync(join(pool, 'meta'), join(after, 'meta'), { recursive: true });
      copyFileSync(platter.primary, join(after, 'extents.dat'));
      let afterMirror: string | undefined;
      if (mirror && platter.mirror) {
        afterMirror = join(dir, 'after-mirror');
        mkdirSync(afterMirror);
        copyFileSync(join(mirror, 'POOL'), join(afterMirror, 'POOL'));
        copyFileSync(platter.mirror, join(afterMirror, 'extents.dat'));
      }
      const r = await EmbeddedStorageDriver.open({ pool: after, ...(afterMirror ? { mirror: afterMirror } : {}) });
      try {
        const report = await r.scrub();
        assert.deepEqual({ errors: report.errors, unrecoverable: report.unrecoverable }, { errors: 0, unrecoverable: 0 }, 'no block fails its checksum after the cut');
        const dev = await r.open('v');
        const data = await dev.read(0, SIZE);
        await dev.close();
        for (let b = 0; b < SIZE / BS; b++) {
          const blk = data.subarray(b * BS, (b + 1) * BS);
          const s = blk.readUInt32LE(0);
          const ok = s === 0 ? blk.equals(Buffer.alloc(BS)) : blk.equals(stamp(s, b, 1));
          assert.ok(ok, `block ${b} holds neither zeros nor a whole stamped block (seq ${s})`);
          assert.ok(allowed[b]!.has(s), `block ${b} holds write ${s}; allowed after the cut: ${[...allowed[b]!].join(', ')}`);
        }
        for (const sn of await r.listSnapshots('v')) {
          const want = snaps.find((x) => x.name === sn.name);
          assert.ok(want, `snapshot ${sn.name} exists but was never completed`);
          const sd = await r.open('v', { snapshot: sn.name });
          const sdata = await sd.read(0, SIZE);
          await sd.close();
          for (let b = 0; b < SIZE / BS; b++) assert.equal(sdata.readUInt32LE(b * BS), want.blocks[b], `v@${sn.name} block ${b}`);
        }
      } finally {
        await r.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }),
    { numRuns: 60 },
  );
});
