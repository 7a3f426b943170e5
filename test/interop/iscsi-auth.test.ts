/**
 * Protocol and authentication interop with libiscsi 1.19 (iscsi-inq, iscsi-ls, iscsi-test-cu)
 * against our target on 127.0.0.1:14120: one-way and mutual CHAP (URL credentials and
 * libiscsi's target_user/target_password), wrong secrets (0x0201), the initiator allow list
 * (0x0202), CRC32C header digests, the iSCSI conformance suites with mutual CHAP and header
 * digests on, and 100 login/logout cycles that leak no descriptors and no memory.
 *
 * libiscsi's tools offer "HeaderDigest=None,CRC32C" whatever the URL says, and the list rule
 * (RFC 7143 §6.2.1) picks the initiator's first supported value, so digests are exercised on
 * a second portal (127.0.0.1:14121) whose policy accepts only CRC32C.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { IscsiServer } from '../../src/services/iscsi/iscsi-server.js';
import { StaticTargetResolver } from '../../src/services/iscsi/static-target-resolver.js';
import { FileStorageDriver } from '../../src/store/file/file-storage-driver.js';
import type { BlockDevice } from '../../src/store/block-device.js';
import { Metrics } from '../../src/observe/metrics.js';
import { runTool } from '../support/run-tool.js';

const PORT = 14120;
const DIGEST_PORT = 14121;
const OPEN = 'iqn.2026-11.io.diskless:auth-open';
const ONEWAY = 'iqn.2026-11.io.diskless:auth-oneway';
const MUTUAL = 'iqn.2026-11.io.diskless:auth-mutual';
const ACL = 'iqn.2026-11.io.diskless:auth-acl';
const ALLOWED = 'iqn.2026-11.io.diskless:auth-allowed';
let dir: string;
let device: BlockDevice;
let server: IscsiServer;
let digestServer: IscsiServer;
const metrics = new Metrics();
/** Session log lines (JSON objects) the target wrote. */
const logLines: Array<Record<string, unknown>> = [];

const tool = (cmd: string, args: string[], env: Record<string, string> = {}, timeout = 60_000) => runTool(cmd, args, timeout, env);

const url = (iqn: string, auth = '', query = '', port = PORT) => `iscsi://${auth ? `${auth}@` : ''}127.0.0.1:${port}/${iqn}/0${query}`;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'di-iscsi-auth-'));
  const store = new FileStorageDriver({ dataDir: dir });
  await store.create('v', { size: 16 * 1024 * 1024 });
  device = await store.open('v');
  const log = pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) });
  const targets = new StaticTargetResolver([
      { name: OPEN, device, readOnly: false },
      { name: ONEWAY, device, readOnly: false, chap: { username: 'node1', secret: 'secretsecret1' } },
      { name: MUTUAL, device, readOnly: false, chap: { username: 'node1', secret: 'secretsecret1' }, mutualChap: { username: 'target1', secret: 'targetsecret1' } },
      { name: ACL, device, readOnly: false, allowedInitiators: [ALLOWED] },
  ]);
  server = new IscsiServer({ address: '127.0.0.1', port: PORT, log, metrics, shutdownGraceMs: 0, targets });
  await server.start();
  digestServer = new IscsiServer({ address: '127.0.0.1', port: DIGEST_PORT, log, metrics: new Metrics(), shutdownGraceMs: 0, targets, limits: { digests: ['CRC32C'] } });
  await digestServer.start();
});

after(async () => {
  await server.stop();
  await digestServer.stop();
  await device.close();
  await rm(dir, { recursive: true, force: true });
});

test('one-way CHAP: the right secret logs in; a wrong one and none get 0x0201', async () => {
  const ok = await tool('iscsi-inq', [url(ONEWAY, 'node1%secretsecret1')]);
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, /Vendor:DISKLESS/);
  for (const auth of ['node1%wrongsecret1', 'nobody%secretsecret1', '']) {
    const bad = await tool('iscsi-inq', [url(ONEWAY, auth)]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.out, /Authentication failure\(513\)/, auth);
  }
});

test('mutual CHAP: libiscsi checks our CHAP_R (URL target_user/target_password and the LIBISCSI_CHAP_TARGET_* environment)', async () => {
  const ok = await tool('iscsi-inq', [url(MUTUAL, 'node1%secretsecret1', '?target_user=target1&target_password=targetsecret1')]);
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, /Vendor:DISKLESS/);
  const env = await tool('iscsi-inq', [url(MUTUAL, 'node1%secretsecret1')], { LIBISCSI_CHAP_TARGET_USERNAME: 'target1', LIBISCSI_CHAP_TARGET_PASSWORD: 'targetsecret1' });
  assert.equal(env.code, 0, env.out);
  // The initiator expects another secret: our (correct) answer does not match it, libiscsi refuses the target.
  const other = await tool('iscsi-inq', [url(MUTUAL, 'node1%secretsecret1', '?target_user=target1&target_password=notthesecret')]);
  assert.notEqual(other.code, 0);
  assert.match(other.out, /Invalid CHAP_R response from the target/);
  // A target without a mutual secret refuses an initiator that asks for one.
  const none = await tool('iscsi-inq', [url(ONEWAY, 'node1%secretsecret1', '?target_user=target1&target_password=targetsecret1')]);
  assert.match(none.out, /Authentication failure\(513\)/);
});

test('initiator allow list: a stranger gets 0x0202 authorization failure, the listed name logs in', async () => {
  const stranger = await tool('iscsi-inq', ['-i', 'iqn.2026-11.io.diskless:stranger', url(ACL)]);
  assert.notEqual(stranger.code, 0);
  assert.match(stranger.out, /Authorization failure\(514\)/);
  const ok = await tool('iscsi-inq', ['-i', ALLOWED, url(ACL)]);
  assert.equal(ok.code, 0, ok.out);
});

test('CRC32C header digests with libiscsi: None first is honoured on an open portal, a CRC32C-only portal gets digests (inquiry, 1 MiB write/read)', async () => {
  logLines.length = 0;
  const plain = await tool('iscsi-inq', [url(OPEN)]);
  assert.equal(plain.code, 0, plain.out);
  const r = await tool('iscsi-inq', [url(OPEN, '', '', DIGEST_PORT)]);
  assert.equal(r.code, 0, r.out);
  const established = logLines.filter((l) => l.msg === 'iscsi session established').map((l) => l.headerDigest);
  assert.deepEqual(established, [false, true]);
  const io = await tool('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5d 0 1M', '-c', 'read -P 0x5d 0 1M', url(OPEN, '', '', DIGEST_PORT)]);
  if (!/Unknown protocol 'iscsi'/.test(io.out)) assert.equal(io.code, 0, io.out);
});

test('iscsi-test-cu iSCSI.* (CmdSN, DataSN, residuals, task management) with mutual CHAP and header digests: 0 failures', async () => {
  const r = await tool('iscsi-test-cu', ['-d', '--test=iSCSI.*', url(MUTUAL, 'node1%secretsecret1', '?target_user=target1&target_password=targetsecret1', DIGEST_PORT)], {}, 240_000);
  const m = /tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(r.out);
  assert.ok(m, r.out.slice(-2000));
  const [, total, ran, passed, failed] = m.map(Number);
  console.log(`iscsi-test-cu iSCSI.* (mutual CHAP, header digest): ${total} tests, ${ran} ran, ${passed} passed, ${failed} failed`);
  assert.equal(failed, 0, r.out.split('\n').filter((l) => /FAIL/.test(l)).join('\n'));
  assert.ok(total! >= 15 && passed === ran);
});

test('100 libiscsi login/logout cycles leak no descriptors and no memory', async () => {
  const fds = async () => (await readdir('/proc/self/fd')).length;
  const settle = async () => {
    for (let i = 0; i < 50 && metricsConnections() > 0; i++) await new Promise((r) => setTimeout(r, 20));
    (globalThis as { gc?: () => void }).gc?.();
  };
  const metricsConnections = () => metrics.value('diskless_iscsi_connections');
  // Warm-up: the first logins allocate lazily built state (CRC tables, module caches).
  for (let i = 0; i < 5; i++) assert.equal((await tool('iscsi-inq', [url(MUTUAL, 'node1%secretsecret1', '?target_user=target1&target_password=targetsecret1')])).code, 0);
  await settle();
  const fd0 = await fds();
  const heap0 = process.memoryUsage().heapUsed;
  const logins0 = metrics.value('diskless_iscsi_logins_total', { result: 'success' });
  for (let i = 0; i < 100; i += 4) {
    const batch = await Promise.all(Array.from({ length: 4 }, () => tool('iscsi-inq', [url(MUTUAL, 'node1%secretsecret1', '?target_user=target1&target_password=targetsecret1')])));
    for (const b of batch) assert.equal(b.code, 0, b.out);
  }
  await settle();
  assert.equal(metrics.value('diskless_iscsi_logins_total', { result: 'success' }) - logins0, 100);
  assert.equal(metricsConnections(), 0, 'every connection closed');
  const fd1 = await fds();
  const heap1 = process.memoryUsage().heapUsed;
  console.log(`100 login/logout cycles: fds ${fd0} -> ${fd1}, heap ${(heap0 / 2 ** 20).toFixed(1)} -> ${(heap1 / 2 ** 20).toFixed(1)} MiB`);
  assert.ok(fd1 <= fd0, `descriptors ${fd0} -> ${fd1}`);
  assert.ok(heap1 - heap0 < 8 * 2 ** 20, `heap grew ${((heap1 - heap0) / 2 ** 20).toFixed(1)} MiB`);
});
