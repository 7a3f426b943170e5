import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { EmbeddedStorageDriver } from './embedded-storage-driver.js';
import type { BlockDevice } from '../block-device.js';

/**
 * Model test: random sequences of writes (aligned, unaligned, sub-block, spanning extents),
 * unmaps, flushes, snapshots, clones, rollbacks, snapshot destroys, promotes and pool
 * reopens, checked against plain buffers after every step. Small extents (16 KiB) so most
 * writes are partial and copy-on-write, in-place rewrites and merges all happen.
 */
const SIZE = 256 * 1024;
const BS = 512;

type Op =
  | { kind: 'write'; vol: number; block: number; blocks: number; byte: number; aligned: boolean }
  | { kind: 'unmap'; vol: number; block: number; blocks: number }
  | { kind: 'flush' }
  | { kind: 'snapshot'; vol: number }
  | { kind: 'clone'; vol: number }
  | { kind: 'rollback'; vol: number }
  | { kind: 'destroySnapshot'; vol: number; pick: number }
  | { kind: 'promote'; vol: number }
  | { kind: 'reopen' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('write' as const), vol: fc.nat(3), block: fc.nat(SIZE / BS - 1), blocks: fc.integer({ min: 1, max: 80 }), byte: fc.integer({ min: 1, max: 255 }), aligned: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('unmap' as const), vol: fc.nat(3), block: fc.nat(SIZE / BS - 1), blocks: fc.integer({ min: 1, max: 100 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('snapshot' as const), vol: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('clone' as const), vol: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('rollback' as const), vol: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('destroySnapshot' as const), vol: fc.nat(3), pick: fc.nat(5) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('promote' as const), vol: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
);

interface ModelVolume {
  name: string;
  data: Buffer;
  snaps: { name: string; data: Buffer }[];
}

test('embedded pool matches a buffer model under random writes, snapshots, clones, rollbacks, destroys, promotes and reopens', async () => {
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 40 }), fc.boolean(), async (ops, mirrored) => {
      const dir = mkdtempSync(join(tmpdir(), `emb-model-${run++}-`));
      const options = { pool: join(dir, 'pool'), extentSize: 16384, ...(mirrored ? { mirror: join(dir, 'mirror') } : {}) };
      let d = await EmbeddedStorageDriver.open(options);
      const devs = new Map<string, BlockDevice>();
      const dev = async (name: string): Promise<BlockDevice> => {
        let x = devs.get(name);
        if (!x) devs.set(name, (x = await d.open(name)));
        return x;
      };
      const closeAll = async (): Promise<void> => {
        for (const x of devs.values()) await x.close();
        devs.clear();
      };
      try {
        const model: ModelVolume[] = [{ name: 'v0', data: Buffer.alloc(SIZE), snaps: [] }];
        await d.create('v0', { size: SIZE });
        let seq = 0;
        for (const op of ops) {
          const vol = 'vol' in op ? model[op.vol % model.length]! : undefined;
          switch (op.kind) {
            case 'write': {
              // Half the writes whole 4 KiB blocks (the pool's synchronous path when inside one extent).
              const per = 4096 / BS;
              const at = op.aligned ? op.block - (op.block % per) : op.block;
              const blocks = Math.min(op.aligned ? Math.ceil(op.blocks / (4 * per)) * per : op.blocks, SIZE / BS - at);
              const buf = Buffer.alloc(blocks * BS, op.byte);
              buf.writeUInt32LE(seq++, 0); // not all one byte: catches a block landing in the wrong place
              await (await dev(vol!.name)).write(at * BS, buf);
              buf.copy(vol!.data, at * BS);
              break;
            }
            case 'unmap': {
              const blocks = Math.min(op.blocks, SIZE / BS - op.block);
              await (await dev(vol!.name)).unmap(op.block * BS, blocks * BS);
              vol!.data.fill(0, op.block * BS, (op.block + blocks) * BS);
              break;
            }
            case 'flush':
              for (const x of devs.values()) await x.flush();
              break;
            case 'snapshot': {
              const name = `s${seq++}`;
              await d.snapshot(vol!.name, name);
              vol!.snaps.push({ name, data: Buffer.from(vol!.data) });
              break;
            }
            case 'clone': {
              const snap = vol!.snaps[vol!.snaps.length - 1];
              if (!snap) break;
              const name = `c${seq++}`;
              await d.clone(vol!.name, snap.name, name);
              model.push({ name, data: Buffer.from(snap.data), snaps: [] });
              break;
            }
            case 'rollback': {
              const snap = vol!.snaps[vol!.snaps.length - 1];
              if (!snap) break;
              await devs.get(vol!.name)?.close();
              devs.delete(vol!.name);
              await d.rollback(vol!.name, snap.name);
              vol!.data = Buffer.from(snap.data);
              break;
            }
            case 'destroySnapshot': {
              const snap = vol!.snaps[op.pick % Math.max(1, vol!.snaps.length)];
              if (!snap) break;
              const info = (await d.listSnapshots(vol!.name)).find((s) => s.name === snap.name)!;
              if (info.clones.length > 0) {
                await assert.rejects(d.destroySnapshot(vol!.name, snap.name), { code: 'STORE_HAS_DEPENDENTS' });
                break;
              }
              await d.destroySnapshot(vol!.name, snap.name);
              vol!.snaps = vol!.snaps.filter((s) => s !== snap);
              break;
            }
            case 'promote': {
              const info = await d.info(vol!.name);
              if (info.origin.kind !== 'clone') {
                await assert.rejects(d.promote(vol!.name), { code: 'STORE_NOT_CLONE' });
                break;
              }
              const origin = info.origin;
              await d.promote(vol!.name);
              const from = model.find((m) => m.name === origin.volume)!;
              const at = from.snaps.findIndex((s) => s.name === origin.snapshot);
              vol!.snaps = [...from.snaps.slice(0, at + 1), ...vol!.snaps];
              from.snaps = from.snaps.slice(at + 1);
              break;
            }
            case 'reopen':
              await closeAll();
              await d.close();
              d = await EmbeddedStorageDriver.open(options);
              break;
          }
          for (const m of model) {
            const got = await (await dev(m.name)).read(0, SIZE);
            assert.ok(got.equals(m.data), `${m.name} differs from the model after ${JSON.stringify(op)}`);
            // 512-byte-aligned reads that are not 4 KiB-aligned (the covering-block paths).
            const at = ((seq * 7919) % (SIZE / BS - 40)) * BS;
            const part = await (await dev(m.name)).read(at + BS, 37 * BS);
            assert.ok(part.equals(m.data.subarray(at + BS, at + 38 * BS)), `${m.name}: unaligned read at ${at + BS} differs after ${JSON.stringify(op)}`);
          }
        }
        for (const m of model) {
          assert.deepEqual(
            (await d.listSnapshots(m.name)).map((s) => s.name),
            m.snaps.map((s) => s.name),
          );
          for (const s of m.snaps) {
            const sd = await d.open(m.name, { snapshot: s.name });
            assert.ok((await sd.read(0, SIZE)).equals(s.data), `${m.name}@${s.name} changed`);
            await sd.close();
          }
          const info = await d.info(m.name);
          assert.ok(info.referenced <= SIZE + 16384 && info.used >= info.written, `space figures of ${m.name}: ${JSON.stringify(info)}`);
        }
        await closeAll();
        const report = await d.scrub();
        assert.equal(report.errors, 0);
        // Destroying everything, leaves first (after promotes a clone's origin can be any
        // volume, so passes until none is left: each pass destroys at least one leaf).
        for (let pass = 0; pass < model.length && (await d.list()).length > 0; pass++) {
          for (const m of model) if (await d.exists(m.name)) await d.destroy(m.name, { recursive: true }).catch(async (err: { code?: string }) => assert.equal(err.code, 'STORE_HAS_DEPENDENTS'));
        }
        assert.deepEqual(await d.list(), [], 'every volume could be destroyed');
      } finally {
        await closeAll().catch(() => undefined);
        await d.close().catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      }
    }),
    { numRuns: Number(process.env.MODEL_RUNS ?? 40) },
  );
});
