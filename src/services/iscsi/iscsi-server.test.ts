/**
 * The target over real TCP on 127.0.0.1 (ephemeral port), volumes from the file driver,
 * driven PDU by PDU with test/support/iscsi-client.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IscsiTestClient } from '../../../test/support/iscsi-client.js';
import { IscsiOpcode, LoginStatus, RejectReason, TaskResponse } from '../../wire/iscsi/iscsi-constants.js';
import { encodePduBuffer } from '../../wire/iscsi/pdu-framing.js';
import { decodeTextKeys } from '../../wire/iscsi/text-keys.js';
import { decodeSense } from '../../wire/scsi/sense.js';
import { Metrics } from '../../observe/metrics.js';
import { silentLogger } from '../../observe/logger.js';
import { FileStorageDriver } from '../../store/file/file-storage-driver.js';
import type { BlockDevice } from '../../store/block-device.js';
import { IscsiServer } from './iscsi-server.js';
import { StaticTargetResolver } from './static-target-resolver.js';

const RW = 'iqn.2026-11.io.diskless:rw';
const RO = 'iqn.2026-11.io.diskless:ro';
const CHAP = 'iqn.2026-11.io.diskless:chap';
const SIZE = 16 * 1024 * 1024;
let dir: string;
let device: BlockDevice;
let server: IscsiServer;
const metrics = new Metrics();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'di-iscsi-'));
  const store = new FileStorageDriver({ dataDir: dir });
  await store.create('v', { size: SIZE });
  device = await store.open('v');
  const many = Array.from({ length: 40 }, (_, i) => ({ name: `iqn.2026-11.io.diskless:extra-${String(i).padStart(2, '0')}-with-a-long-name`, device, readOnly: true }));
  server = new IscsiServer({
    address: '127.0.0.1',
    port: 0,
    log: silentLogger(),
    metrics,
    shutdownGraceMs: 0,
    targets: new StaticTargetResolver([{ name: RW, device, readOnly: false }, { name: RO, device, readOnly: true }, { name: CHAP, device, readOnly: false, chap: { username: 'node1', secret: 'secretsecret1' } }, ...many]),
  });
  await server.start();
});

after(async () => {
  await server.stop();
  await device.close();
  await rm(dir, { recursive: true, force: true });
});

async function session(target = RW, keys?: Array<[string, string]>): Promise<IscsiTestClient> {
  const c = await IscsiTestClient.connect(server.port);
  const r = await c.login({ target, ...(keys ? { keys } : {}) });
  assert.equal(r.statusClass, 0, `login to ${target}`);
  assert.equal(r.transit, true);
  return c;
}

const cdb = (hex: string) => Buffer.from(hex, 'hex');
const read10 = (lba: number, blocks: number) => {
  const b = Buffer.alloc(10);
  b[0] = 0x28;
  b.writeUInt32BE(lba, 2);
  b.writeUInt16BE(blocks, 7);
  return b;
};
const write10 = (lba: number, blocks: number) => {
  const b = read10(lba, blocks);
  b[0] = 0x2a;
  return b;
};
const senseTriplet = (s: Buffer) => {
  const d = decodeSense(s)!;
  return [d.key, d.asc, d.ascq];
};

test('READ is split into Data-In PDUs of the initiator MaxRecvDataSegmentLength, status in the last', async () => {
  const pattern = Buffer.alloc(40960);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7) & 0xff;
  await device.write(1024 * 512, pattern);
  const c = await session(RW, [['MaxRecvDataSegmentLength', '4096'], ['MaxBurstLength', '16384']]);
  const r = await c.scsi(read10(1024, 80), { read: 40960 });
  assert.equal(r.status, 0);
  assert.deepEqual(r.data, pattern);
  const dataIns = r.pdus.filter((p) => p.opcode === IscsiOpcode.dataIn);
  assert.equal(dataIns.length, 10);
  dataIns.forEach((p, i) => {
    if (p.opcode !== IscsiOpcode.dataIn) return;
    assert.equal(p.dataSN, i);
    assert.equal(p.bufferOffset, i * 4096);
    assert.equal(p.statusPresent, i === 9);
    assert.equal(p.final, i === 9 || (i + 1) % 4 === 0, `F closes each 16 KiB burst (PDU ${i})`);
  });
  c.close();
});

test('INQUIRY, READ CAPACITY, MODE SENSE, REPORT LUNS, TEST UNIT READY, SYNCHRONIZE CACHE; residuals on short allocation', async () => {
  const c = await session();
  assert.equal((await c.scsi(cdb('00000000000000'))).status, 0);
  const inq = await c.scsi(cdb('120000006000'), { read: 96 });
  assert.equal(inq.data.toString('ascii', 8, 16), 'DISKLESS');
  const short = await c.scsi(cdb('120000002400'), { read: 255 });
  assert.deepEqual([short.data.length, short.underflow, short.residual], [36, true, 255 - 36]);
  const over = await c.scsi(cdb('120000006000'), { read: 16 });
  assert.deepEqual([over.data.length, over.overflow, over.residual], [16, true, 80]);
  const cap = await c.scsi(cdb('25000000000000000000'), { read: 8 });
  assert.deepEqual([cap.data.readUInt32BE(0), cap.data.readUInt32BE(4)], [SIZE / 512 - 1, 512]);
  const cap16 = await c.scsi(cdb('9e100000000000000000000000200000'), { read: 32 });
  assert.equal(cap16.data.readBigUInt64BE(0), BigInt(SIZE / 512 - 1));
  const ms = await c.scsi(cdb('1a003f00ff00'), { read: 255 });
  assert.equal(ms.data[2]! & 0x80, 0, 'writable');
  const luns = await c.scsi(cdb('a0000000000000001000'), { read: 4096 });
  assert.equal(luns.data.readUInt32BE(0), 8);
  assert.equal((await c.scsi(cdb('35000000000000000000'))).status, 0);
  const rs = await c.scsi(cdb('030000001200'), { read: 18 });
  assert.deepEqual(senseTriplet(rs.data), [0, 0, 0]);
  c.close();
});

test('CHECK CONDITION: invalid opcode 05/20/00, LBA out of range 05/21/00, invalid field 05/24/00, missing LUN, read-only 07/27/00', async () => {
  const c = await session();
  const bad = await c.scsi(cdb('c1000000000000000000'));
  assert.deepEqual([bad.status, ...senseTriplet(bad.sense)], [2, 5, 0x20, 0]);
  const range = await c.scsi(read10(SIZE / 512 - 1, 2), { read: 1024 });
  assert.deepEqual([range.status, ...senseTriplet(range.sense)], [2, 5, 0x21, 0]);
  assert.equal(range.underflow, true);
  const field = await c.scsi(cdb('1201c000ff00'), { read: 255 });
  assert.deepEqual([field.status, ...senseTriplet(field.sense)], [2, 5, 0x24, 0]);
  const lun1 = await c.scsi(cdb('120000006000'), { read: 96, lun: 0x0001000000000000n });
  assert.equal(lun1.data[0], 0x7f, 'peripheral qualifier 011b');
  const lun1read = await c.scsi(read10(0, 1), { read: 512, lun: 0x0001000000000000n });
  assert.deepEqual(senseTriplet(lun1read.sense), [5, 0x25, 0]);
  c.close();
  const ro = await session(RO);
  const w = await ro.scsi(write10(0, 1), { write: Buffer.alloc(512, 1), immediate: 512 });
  assert.deepEqual([w.status, ...senseTriplet(w.sense)], [2, 7, 0x27, 0]);
  const ms = await ro.scsi(cdb('1a083f00ff00'), { read: 255 });
  assert.equal(ms.data[2]! & 0x80, 0x80, 'WP bit');
  ro.close();
});

test('WRITE: immediate data, then R2Ts of MaxBurstLength for the rest (InitialR2T=Yes)', async () => {
  const c = await session(RW, [['InitialR2T', 'Yes'], ['ImmediateData', 'Yes'], ['FirstBurstLength', '4096'], ['MaxBurstLength', '8192'], ['MaxRecvDataSegmentLength', '8192']]);
  const data = Buffer.alloc(32768);
  for (let i = 0; i < data.length; i++) data[i] = (i * 13 + 5) & 0xff;
  const r = await c.scsi(write10(2048, 64), { write: data, immediate: 4096, segment: 2048 });
  assert.equal(r.status, 0);
  const r2ts = r.pdus.filter((p) => p.opcode === IscsiOpcode.r2t).map((p) => (p.opcode === IscsiOpcode.r2t ? [p.r2tSN, p.bufferOffset, p.desiredDataTransferLength] : []));
  assert.deepEqual(r2ts, [[0, 4096, 8192], [1, 12288, 8192], [2, 20480, 8192], [3, 28672, 4096]]);
  assert.deepEqual(await device.read(2048 * 512, 32768), data);
  const back = await c.scsi(read10(2048, 64), { read: 32768 });
  assert.deepEqual(back.data, data);
  c.close();
});

test('WRITE: unsolicited Data-Out up to FirstBurstLength (InitialR2T=No), then R2T; EDTL residuals', async () => {
  const c = await session(RW, [['InitialR2T', 'No'], ['ImmediateData', 'Yes'], ['FirstBurstLength', '8192'], ['MaxRecvDataSegmentLength', '8192']]);
  const data = Buffer.alloc(16384, 0x3c);
  const r = await c.scsi(write10(4096, 32), { write: data, immediate: 1024, unsolicited: 7168 });
  assert.equal(r.status, 0);
  assert.deepEqual(r.pdus.filter((p) => p.opcode === IscsiOpcode.r2t).map((p) => (p.opcode === IscsiOpcode.r2t ? p.bufferOffset : -1)), [8192]);
  assert.deepEqual(await device.read(4096 * 512, 16384), data);
  // EDTL larger than the CDB: only the CDB's block is written, underflow residual.
  await device.write(0, Buffer.alloc(1024, 0x61));
  const under = await c.scsi(write10(0, 1), { write: Buffer.alloc(1024, 0x62), immediate: 1024 });
  assert.deepEqual([under.status, under.underflow, under.residual], [0, true, 512]);
  assert.deepEqual([...(await device.read(0, 1024)).subarray(510, 514)], [0x62, 0x62, 0x61, 0x61]);
  c.close();
});

test('NOP-Out echoes as NOP-In; ABORT TASK of an unknown tag answers "task does not exist"; StatSN/ExpCmdSN advance', async () => {
  const c = await session();
  const itt = c.newItt();
  c.send({ opcode: IscsiOpcode.nopOut, immediate: false, lun: 0n, itt, ttt: 0xffffffff, cmdSN: c.cmdSN, expStatSN: c.expStatSN, data: Buffer.from('ping') });
  const before = c.cmdSN;
  c.cmdSN++;
  const nop = await c.next();
  assert.equal(nop.opcode, IscsiOpcode.nopIn);
  if (nop.opcode === IscsiOpcode.nopIn) {
    assert.deepEqual([nop.itt, nop.data.toString(), nop.expCmdSN], [itt, 'ping', before + 1]);
  }
  c.send({ opcode: IscsiOpcode.taskManagementRequest, immediate: true, function: 1, lun: 0n, itt: c.newItt(), referencedTaskTag: 5, cmdSN: c.cmdSN, expStatSN: c.expStatSN, refCmdSN: 0, expDataSN: 0, data: Buffer.alloc(0) });
  const tmf = await c.next();
  assert.ok(tmf.opcode === IscsiOpcode.taskManagementResponse && tmf.response === TaskResponse.taskDoesNotExist);
  c.close();
});

test('malformed PDUs in full feature phase get a Reject carrying their header; the session survives', async () => {
  const c = await session();
  const bad = encodePduBuffer({ opcode: IscsiOpcode.nopOut, immediate: true, lun: 0n, itt: 9, ttt: 0xffffffff, cmdSN: c.cmdSN, expStatSN: 0, data: Buffer.alloc(0) });
  bad[0] = 0x1d; // undefined initiator opcode
  c.send(bad);
  const rej = await c.next();
  assert.ok(rej.opcode === IscsiOpcode.reject);
  if (rej.opcode === IscsiOpcode.reject) {
    assert.equal(rej.reason, RejectReason.commandNotSupported);
    assert.deepEqual(rej.data, bad.subarray(0, 48));
  }
  c.send(encodePduBuffer({ opcode: IscsiOpcode.textRequest, immediate: true, final: true, continue: false, lun: 0n, itt: 10, ttt: 0xffffffff, cmdSN: c.cmdSN, expStatSN: 0, data: Buffer.from('not text') }));
  assert.equal((await c.next()).opcode, IscsiOpcode.reject);
  assert.equal((await c.scsi(cdb('00000000000000'))).status, 0, 'still working');
  assert.ok(metrics.total('diskless_iscsi_rejects_total') >= 2);
  c.close();
});

test('a command outside the CmdSN window is ignored and counted (RFC 7143 §4.2.2.1)', async () => {
  const c = await session();
  const dropped = metrics.value('diskless_iscsi_dropped_total', { reason: 'cmdsn-out-of-window' });
  c.cmdSN += 1000;
  const t = c.scsi(cdb('00000000000000'));
  await assert.rejects(t, /timeout/);
  assert.equal(metrics.value('diskless_iscsi_dropped_total', { reason: 'cmdsn-out-of-window' }), dropped + 1);
  c.close();
});

test('discovery: SendTargets=All lists every target, split over Text Responses with a TTT when longer than MaxRecvDataSegmentLength', async () => {
  const c = await IscsiTestClient.connect(server.port);
  const r = await c.login({ discovery: true, keys: [['MaxRecvDataSegmentLength', '512']] });
  assert.equal(r.statusClass, 0);
  const parts: Buffer[] = [];
  let ttt = 0xffffffff;
  const itt = c.newItt();
  for (let i = 0; i < 50; i++) {
    c.send({ opcode: IscsiOpcode.textRequest, immediate: true, final: true, continue: false, lun: 0n, itt, ttt, cmdSN: c.cmdSN, expStatSN: c.expStatSN, data: ttt === 0xffffffff ? Buffer.from('SendTargets=All\0') : Buffer.alloc(0) });
    const p = await c.next();
    assert.equal(p.opcode, IscsiOpcode.textResponse);
    if (p.opcode !== IscsiOpcode.textResponse) break;
    assert.ok(p.data.length <= 512);
    parts.push(p.data);
    if (p.final) break;
    ttt = p.ttt;
  }
  assert.ok(parts.length > 3, `${parts.length} pieces`);
  const keys = decodeTextKeys(Buffer.concat(parts));
  const names = keys.filter((k) => k.key === 'TargetName').map((k) => k.value);
  assert.equal(names.length, 43);
  assert.ok(names.includes(RW));
  assert.equal(keys.find((k) => k.key === 'TargetAddress')!.value, `127.0.0.1:${server.port},1`);
  // SCSI commands are not for discovery sessions.
  const scsi = c.scsi(cdb('00000000000000'));
  await assert.rejects(scsi, /unexpected opcode 0x3f/);
  c.close();
});

test('CHAP target: right secret logs in, wrong secret 0x0201 and the connection closes, unknown target 0x0203', async () => {
  const ok = await IscsiTestClient.connect(server.port);
  assert.equal((await ok.login({ target: CHAP, chap: { username: 'node1', secret: 'secretsecret1' } })).statusClass, 0);
  assert.equal((await ok.scsi(cdb('00000000000000'))).status, 0);
  ok.close();
  const bad = await IscsiTestClient.connect(server.port);
  const r = await bad.login({ target: CHAP, chap: { username: 'node1', secret: 'wrong-secret' } });
  assert.equal((r.statusClass << 8) | r.statusDetail, LoginStatus.authenticationFailure);
  assert.equal(await bad.waitClosed(), true);
  const none = await IscsiTestClient.connect(server.port);
  const nf = await none.login({ target: 'iqn.2026-11.io.diskless:nope' });
  assert.equal((nf.statusClass << 8) | nf.statusDetail, LoginStatus.notFound);
  assert.equal(await none.waitClosed(), true);
  assert.ok(metrics.value('diskless_iscsi_logins_total', { result: '0x0201' }) >= 1);
});

test('Logout answers and closes; a non-login PDU before login drops the connection', async () => {
  const c = await session();
  c.send({ opcode: IscsiOpcode.logoutRequest, immediate: true, reason: 0, itt: c.newItt(), cid: 0, cmdSN: c.cmdSN, expStatSN: c.expStatSN, data: Buffer.alloc(0) });
  const lo = await c.next();
  assert.ok(lo.opcode === IscsiOpcode.logoutResponse && lo.response === 0);
  assert.equal(await c.waitClosed(), true);
  const early = await IscsiTestClient.connect(server.port);
  early.send({ opcode: IscsiOpcode.nopOut, immediate: true, lun: 0n, itt: 1, ttt: 0xffffffff, cmdSN: 0, expStatSN: 0, data: Buffer.alloc(0) });
  assert.equal(await early.waitClosed(), true);
});

test('30 concurrent sessions reading and writing their own blocks', async () => {
  const clients = await Promise.all(Array.from({ length: 30 }, () => session()));
  await Promise.all(
    clients.map(async (c, i) => {
      const lba = 8192 + i * 16;
      const data = Buffer.alloc(8192, i + 1);
      assert.equal((await c.scsi(write10(lba, 16), { write: data, immediate: 8192 })).status, 0);
      assert.deepEqual((await c.scsi(read10(lba, 16), { read: 8192 })).data, data);
      c.close();
    }),
  );
  assert.equal(metrics.value('diskless_iscsi_connections') <= 30, true);
});
