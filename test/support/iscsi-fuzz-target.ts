/**
 * The live target of the iSCSI fuzzers, run as a child process so that a crash shows as an
 * exit, not as a dead test runner: `node dist/test/support/iscsi-fuzz-target.js PORT DIR`.
 * Two targets on 127.0.0.1:PORT (0 = any; the bound port is printed as `listening PORT`):
 * FUZZ_TARGET, a 16 MiB read-write volume the fuzzers may scribble on, and CONTROL_TARGET, a
 * read-only 16 MiB volume filled with `controlPattern`, which the control session reads and
 * checks throughout. Internal failures are logged on stderr (level error) and counted; on
 * SIGTERM it prints `stats {json}` (metrics that matter to the fuzzer) and exits 0.
 */
import { writeFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IscsiServer } from '../../src/services/iscsi/iscsi-server.js';
import { StaticTargetResolver } from '../../src/services/iscsi/static-target-resolver.js';
import { FileBlockDevice } from '../../src/store/file/file-block-device.js';
import { Metrics } from '../../src/observe/metrics.js';
import { createLogger } from '../../src/observe/logger.js';

export const FUZZ_TARGET = 'iqn.2026-11.io.diskless:fuzz';
export const CONTROL_TARGET = 'iqn.2026-11.io.diskless:fuzz-control';
export const VOLUME_BYTES = 16 * 1024 * 1024;
export const BLOCK = 512;

/** The 512-byte block at `lba` of the control volume: its LBA repeated (so a misplaced read shows). */
export function controlPattern(lba: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  for (let i = 0; i < BLOCK; i += 4) b.writeUInt32BE((lba * 2654435761 + i) >>> 0, i);
  return b;
}

async function main(port: number, dir: string): Promise<void> {
  const fuzzFile = join(dir, 'fuzz.img');
  const controlFile = join(dir, 'control.img');
  await writeFile(fuzzFile, Buffer.alloc(VOLUME_BYTES));
  const control = Buffer.alloc(VOLUME_BYTES);
  for (let lba = 0; lba < VOLUME_BYTES / BLOCK; lba++) controlPattern(lba).copy(control, lba * BLOCK);
  await writeFile(controlFile, control);
  const fuzzDevice = new FileBlockDevice(await open(fuzzFile, 'r+'), VOLUME_BYTES, BLOCK, false, 'fuzz');
  const controlDevice = new FileBlockDevice(await open(controlFile, 'r'), VOLUME_BYTES, BLOCK, true, 'control');
  const metrics = new Metrics();
  const server = new IscsiServer({
    address: '127.0.0.1',
    port,
    log: createLogger({ level: 'error' }),
    metrics,
    loginTimeoutMs: 2000,
    targets: new StaticTargetResolver([
      { name: FUZZ_TARGET, device: fuzzDevice, readOnly: false },
      { name: CONTROL_TARGET, device: controlDevice, readOnly: true },
    ]),
  });
  await server.start();
  process.stdout.write(`listening ${server.port}\n`);
  process.on('SIGTERM', () => {
    const stats = {
      internalErrors: metrics.value('diskless_iscsi_dropped_total', { reason: 'internal-error' }),
      rejects: metrics.total('diskless_iscsi_rejects_total'),
      dropped: metrics.total('diskless_iscsi_dropped_total'),
      logins: metrics.value('diskless_iscsi_logins_total', { result: 'success' }),
      commands: metrics.total('diskless_iscsi_commands_total'),
      rssMiB: process.memoryUsage().rss / 2 ** 20,
      /** Why connections were dropped or PDUs rejected, by metric label. */
      reasons: Object.fromEntries(
        metrics
          .render()
          .split('\n')
          .filter((l) => l.startsWith('diskless_iscsi_dropped_total{'))
          .map((l) => [/reason="([^"]*)"/.exec(l)?.[1] ?? l, Number(l.split(' ').pop())]),
      ),
    };
    process.stdout.write(`stats ${JSON.stringify(stats)}\n`);
    void server.stop().finally(() => process.exit(0));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main(Number(process.argv[2] ?? 0), process.argv[3]!);
}
