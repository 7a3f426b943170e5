/**
 * libiscsi and QEMU against targets whose limits force the solicited-data paths (issue 3):
 * InitialR2T=Yes with 4 KiB FirstBurstLength and 64 KiB MaxBurstLength (every write past its
 * immediate data goes through R2Ts: 128 of them for 8 MiB), and InitialR2T=No with immediate
 * data, unsolicited Data-Out and then R2Ts of 32 KiB. libiscsi offers MaxOutstandingR2T=1,
 * so it gets one R2T at a time (min rule); several at once are covered by
 * src/services/iscsi/command-ordering.test.ts with our own client.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IscsiServer } from '../../src/services/iscsi/iscsi-server.js';
import type { TargetLimits } from '../../src/services/iscsi/operational-keys.js';
import { StaticTargetResolver } from '../../src/services/iscsi/static-target-resolver.js';
import { FileStorageDriver } from '../../src/store/file/file-storage-driver.js';
import type { BlockDevice } from '../../src/store/block-device.js';
import { Metrics } from '../../src/observe/metrics.js';
import { silentLogger } from '../../src/observe/logger.js';
import { runTool } from '../support/run-tool.js';

const IQN = 'iqn.2026-11.io.diskless:r2t';
let dir: string;
const devices: BlockDevice[] = [];
const servers: IscsiServer[] = [];

const tool = (cmd: string, args: string[], timeout = 120_000) => runTool(cmd, args, timeout);

const PROFILES: Record<string, Partial<TargetLimits>> = {
  'InitialR2T=Yes, FirstBurstLength 4 KiB, MaxBurstLength 64 KiB': { initialR2T: true, firstBurstLength: 4096, maxBurstLength: 65536 },
  'InitialR2T=No, FirstBurstLength 16 KiB, MaxBurstLength 32 KiB, MaxRecvDataSegmentLength 8 KiB': { initialR2T: false, firstBurstLength: 16384, maxBurstLength: 32768, maxRecvDataSegmentLength: 8192 },
};
const urls: string[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'di-r2t-'));
  const store = new FileStorageDriver({ dataDir: dir });
  for (const [i, limits] of Object.values(PROFILES).entries()) {
    await store.create(`v${i}`, { size: 64 * 1024 * 1024 });
    const device = await store.open(`v${i}`);
    devices.push(device);
    const server = new IscsiServer({ address: '127.0.0.1', port: 0, log: silentLogger(), metrics: new Metrics(), shutdownGraceMs: 0, limits, targets: new StaticTargetResolver([{ name: IQN, device, readOnly: false }]) });
    await server.start();
    servers.push(server);
    urls.push(`iscsi://127.0.0.1:${server.port}/${IQN}/0`);
  }
});

after(async () => {
  for (const s of servers) await s.stop();
  for (const d of devices) await d.close();
  await rm(dir, { recursive: true, force: true });
});

for (const [i, name] of Object.keys(PROFILES).entries()) {
  test(`${name}: qemu-io writes and reads back 8 MiB patterns; the bytes land in the volume`, async () => {
    const r = await tool('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 8M', '-c', 'read -P 0x5a 0 8M', '-c', 'write -P 0xc3 12345k 3M', '-c', 'flush', '-c', 'read -P 0xc3 12345k 3M', '-c', 'read -P 0x5a 0 8M', urls[i]!]);
    assert.equal(r.code, 0, r.out);
    assert.doesNotMatch(r.out, /Pattern verification failed|error/i, r.out);
    assert.match(r.out, /wrote 8388608\/8388608 bytes at offset 0/);
    assert.match(r.out, /read 3145728\/3145728 bytes at offset 12641280/);
    const back = await devices[i]!.read(0, 8 * 1024 * 1024);
    assert.ok(back.every((b) => b === 0x5a), 'the volume holds the pattern');
    const tail = await devices[i]!.read(12345 * 1024, 3 * 1024 * 1024);
    assert.ok(tail.every((b) => b === 0xc3));
  });

  test(`${name}: iscsi-test-cu iSCSI.* and the SCSI write suites pass`, async () => {
    const tests = ['iSCSI.*', 'SCSI.Write10', 'SCSI.Write12', 'SCSI.Write16', 'SCSI.WriteVerify10', 'SCSI.WriteVerify12', 'SCSI.WriteVerify16', 'SCSI.OrWrite'];
    const r = await tool('iscsi-test-cu', ['-d', `--test=${tests.join(',')}`, urls[i]!], 300_000);
    const m = /tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(r.out);
    assert.ok(m, r.out.slice(-2000));
    const [, total, ran, passed, failed] = m.map(Number);
    console.log(`iscsi-test-cu (${name}): ${total} tests, ${ran} ran, ${passed} passed, ${failed} failed`);
    assert.equal(failed, 0, r.out.split('\n').filter((l) => /FAIL|CU_/.test(l)).join('\n'));
    assert.ok(total! >= 40 && passed === ran && ran === total, r.out.slice(-1500));
  });
}
