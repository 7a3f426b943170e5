// Run: npx tsc -p . && node dist/bench/zfs-volume-timing.js   (docs/zfs.md, "Timings").
// 1 GiB file volume on zfs-fuse: time of snapshot, clone, full send (to /dev/null) and 1% incremental send.
import { ZfsStorageDriver } from '../src/store/zfs/zfs-storage-driver.js';
import { createTestPool } from '../test/support/zfs-fuse.js';
import { randomFillSync } from 'node:crypto';
const GiB = 1 << 30, MiB = 1 << 20;
const pool = await createTestPool({ prefix: 'dl4a-bench', size: 3 * GiB });
const t = async <T>(label: string, fn: () => Promise<T>): Promise<T> => { const t0 = performance.now(); const r = await fn(); console.log(label, (performance.now() - t0).toFixed(1), 'ms'); return r; };
try {
  const d = await ZfsStorageDriver.open({ dataset: `${pool.name}/b` });
  await d.create('gold', { size: GiB });
  const dev = await d.open('gold'); const buf = Buffer.alloc(8 * MiB);
  await t('write 1 GiB', async () => { for (let o = 0; o < GiB; o += buf.length) { randomFillSync(buf); await dev.write(o, buf); } await dev.flush(); });
  await dev.close();
  await t('snapshot (1 GiB written)', () => d.snapshot('gold', 's1'));
  for (let i = 0; i < 3; i++) await t(`clone #${i}`, () => d.clone('gold', 's1', `c${i}`));
  let n = 0;
  await t('send full 1 GiB', async () => { for await (const c of d.send('gold', 's1')) n += c.length; });
  console.log('full stream bytes', n);
  const dev2 = await d.open('gold'); const small = Buffer.alloc(MiB);
  for (let i = 0; i < 10; i++) { randomFillSync(small); await dev2.write(i * 100 * MiB, small); } await dev2.close();
  await t('snapshot s2', () => d.snapshot('gold', 's2'));
  let m = 0;
  await t('send -i s1 s2 (10 MiB changed)', async () => { for await (const c of d.send('gold', 's2', { base: 's1' })) m += c.length; });
  console.log('incremental stream bytes', m, 'ratio', (m / (10 * MiB)).toFixed(3));
  await t('info', () => d.info('gold'));
  await t('listSnapshots', () => d.listSnapshots('gold'));
  await t('open snapshot + close', async () => { const s = await d.open('gold', { snapshot: 's1' }); await s.close(); });
} finally { await pool.destroy(); }
