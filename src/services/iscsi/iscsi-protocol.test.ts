/**
 * Protocol behaviour of the target over real TCP (issue 3): CRC32C digests, task management
 * with unit attentions, target NOP-In pings and dead-peer drops, session reinstatement,
 * TSIH rules, mutual CHAP and allow lists, Async logout request on stop.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IscsiTestClient } from '../../../test/support/iscsi-client.js';
import { IscsiOpcode, LoginStatus, RejectReason, TaskFunction, TaskResponse } from '../../wire/iscsi/iscsi-constants.js';
import { encodePduBuffer } from '../../wire/iscsi/pdu-framing.js';
import { Metrics } from '../../observe/metrics.js';
import { silentLogger } from '../../observe/logger.js';
import { FileStorageDriver } from '../../store/file/file-storage-driver.js';
import type { BlockDevice } from '../../store/block-device.js';
import { IscsiServer, type IscsiServerOptions } from './iscsi-server.js';
import { StaticTargetResolver } from './static-target-resolver.js';

const RW = 'iqn.2026-11.io.diskless:proto';
const MUTUAL = 'iqn.2026-11.io.diskless:mutual';
const ACL = 'iqn.2026-11.io.diskless:acl';
let dir: string;
let device: BlockDevice;
const servers: IscsiServer[] = [];
const metrics = new Metrics();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'di-iscsi-proto-'));
  const store = new FileStorageDriver({ dataDir: dir });
  await store.create('v', { size: 4 * 1024 * 1024 });
  device = await store.open('v');
  shared = await serve();
});

after(async () => {
  for (const s of servers) await s.stop();
  await device.close();
  await rm(dir, { recursive: true, force: true });
});

async function serve(extra: Partial<IscsiServerOptions> = {}): Promise<IscsiServer> {
  const server = new IscsiServer({
    address: '127.0.0.1',
    port: 0,
    log: silentLogger(),
    metrics,
    shutdownGraceMs: 0,
    targets: new StaticTargetResolver([
      { name: RW, device, readOnly: false },
      { name: MUTUAL, device, readOnly: false, chap: { username: 'node1', secret: 'secretsecret1' }, mutualChap: { username: 'target1', secret: 'targetsecret1' } },
      { name: ACL, device, readOnly: false, allowedInitiators: ['iqn.2026-11.io.diskless:allowed'] },
    ]),
    ...extra,
  });
  await server.start();
  servers.push(server);
  return server;
}

let shared: IscsiServer;

async function session(o: Parameters<IscsiTestClient['login']>[0] = { target: RW }, server = shared): Promise<IscsiTestClient> {
  const c = await IscsiTestClient.connect(server.port);
  const r = await c.login(o);
  assert.equal((r.statusClass << 8) | r.statusDetail, 0, `login ${JSON.stringify(c.lastKeys)}`);
  return c;
}

const cdb = (...b: number[]) => Buffer.from(b);
const write10 = (lba: number, blocks: number) => cdb(0x2a, 0, (lba >>> 24) & 0xff, (lba >>> 16) & 0xff, (lba >>> 8) & 0xff, lba & 0xff, 0, (blocks >> 8) & 0xff, blocks & 0xff, 0);
const read10 = (lba: number, blocks: number) => cdb(0x28, 0, (lba >>> 24) & 0xff, (lba >>> 16) & 0xff, (lba >>> 8) & 0xff, lba & 0xff, 0, (blocks >> 8) & 0xff, blocks & 0xff, 0);
const TUR = cdb(0, 0, 0, 0, 0, 0);

function tmf(c: IscsiTestClient, fn: number, o: { ref?: number; lun?: bigint } = {}) {
  c.send({ opcode: IscsiOpcode.taskManagementRequest, immediate: true, function: fn, lun: o.lun ?? 0n, itt: c.newItt(), referencedTaskTag: o.ref ?? 0xffffffff, cmdSN: c.cmdSN, expStatSN: c.expStatSN, refCmdSN: c.cmdSN, expDataSN: 0, data: Buffer.alloc(0) });
}

async function tmfResponse(c: IscsiTestClient): Promise<number> {
  const r = await c.next();
  assert.equal(r.opcode, IscsiOpcode.taskManagementResponse);
  return r.opcode === IscsiOpcode.taskManagementResponse ? r.response : -1;
}

/** sense key / ASC / ASCQ of a fixed-format sense buffer. */
const senseOf = (s: Buffer) => [s[2]! & 0x0f, s[12], s[13]];

test('CRC32C header and data digests: negotiated, carried both ways, a bad data digest is rejected (0x02), a bad header digest drops the connection', async () => {
  const c = await session({ target: RW, keys: [['HeaderDigest', 'CRC32C,None'], ['DataDigest', 'CRC32C'], ['MaxRecvDataSegmentLength', '8192']] });
  assert.deepEqual([c.lastKeys.HeaderDigest, c.lastKeys.DataDigest], ['CRC32C', 'CRC32C']);
  assert.deepEqual(c.digests, { header: true, data: true });
  const data = Buffer.from(Buffer.alloc(20480).map((_, i) => i * 7));
  assert.equal((await c.scsi(write10(100, 40), { write: data, immediate: 4096 })).status, 0);
  const r = await c.scsi(read10(100, 40), { read: 20480 });
  assert.equal(r.status, 0);
  assert.deepEqual(r.data, data);
  // A NOP-Out with data whose digest is corrupted: Reject reason 0x02, the session goes on.
  const nop = encodePduBuffer({ opcode: IscsiOpcode.nopOut, immediate: true, lun: 0n, itt: c.newItt(), ttt: 0xffffffff, cmdSN: c.cmdSN, expStatSN: c.expStatSN, data: Buffer.from('ping') }, c.digests);
  nop[nop.length - 1]! ^= 0xff;
  c.send(nop);
  const rej = await c.next();
  assert.ok(rej.opcode === IscsiOpcode.reject && rej.reason === RejectReason.dataDigestError);
  assert.equal((await c.scsi(TUR)).status, 0);
  const bad = encodePduBuffer({ opcode: IscsiOpcode.nopOut, immediate: true, lun: 0n, itt: c.newItt(), ttt: 0xffffffff, cmdSN: c.cmdSN, expStatSN: c.expStatSN, data: Buffer.alloc(0) }, c.digests);
  bad[49]! ^= 1; // header digest
  c.send(bad);
  assert.equal(await c.waitClosed(), true);
});

test('ABORT TASK: a write waiting for Data-Out is aborted (no response for it), the next TMF for it finds nothing', async () => {
  const c = await session();
  const itt = c.newItt();
  // WRITE(10) of 8 blocks, no data sent: the target answers with an R2T and waits.
  c.send({ opcode: IscsiOpcode.scsiCommand, immediate: false, final: true, read: false, write: true, attribute: 1, lun: 0n, itt, expectedDataTransferLength: 4096, cmdSN: c.cmdSN, expStatSN: c.expStatSN, cdb: Buffer.concat([write10(0, 8), Buffer.alloc(6)]), ahs: Buffer.alloc(0), data: Buffer.alloc(0) });
  c.cmdSN++;
  assert.equal((await c.next()).opcode, IscsiOpcode.r2t);
  tmf(c, TaskFunction.abortTask, { ref: itt });
  assert.equal(await tmfResponse(c), TaskResponse.functionComplete);
  tmf(c, TaskFunction.abortTask, { ref: itt });
  assert.equal(await tmfResponse(c), TaskResponse.taskDoesNotExist);
  // Late Data-Out for the aborted task is discarded; the session works.
  c.send({ opcode: IscsiOpcode.dataOut, final: true, lun: 0n, itt, ttt: 1, expStatSN: c.expStatSN, dataSN: 0, bufferOffset: 0, data: Buffer.alloc(4096) });
  assert.equal((await c.scsi(TUR)).status, 0);
  await assert.rejects(c.next(300), /timeout/, 'nothing more: no response for the aborted write');
  tmf(c, TaskFunction.abortTaskSet, { lun: 0x0005000000000000n });
  assert.equal(await tmfResponse(c), TaskResponse.lunDoesNotExist);
  tmf(c, TaskFunction.clearAca);
  assert.equal(await tmfResponse(c), TaskResponse.functionNotSupported);
  tmf(c, TaskFunction.taskReassign, { ref: 1 });
  assert.equal(await tmfResponse(c), TaskResponse.reassignmentNotSupported);
  c.close();
});

test('LUN RESET: every session of the target gets UNIT ATTENTION 29/03 once; INQUIRY passes, REQUEST SENSE returns and clears it', async () => {
  const a = await session();
  const b = await session();
  tmf(a, TaskFunction.logicalUnitReset);
  assert.equal(await tmfResponse(a), TaskResponse.functionComplete);
  const inq = await b.scsi(cdb(0x12, 0, 0, 0, 36, 0), { read: 36 });
  assert.equal(inq.status, 0, 'INQUIRY is not blocked by a unit attention');
  const rs = await b.scsi(cdb(0x03, 0, 0, 0, 18, 0), { read: 18 });
  assert.equal(rs.status, 0);
  assert.deepEqual(senseOf(rs.data), [6, 0x29, 0x03]);
  assert.equal((await b.scsi(TUR)).status, 0, 'cleared by REQUEST SENSE');
  const ua = await a.scsi(TUR);
  assert.equal(ua.status, 2);
  assert.deepEqual(senseOf(ua.sense), [6, 0x29, 0x03]);
  assert.equal((await a.scsi(TUR)).status, 0, 'reported once');
  tmf(a, TaskFunction.targetWarmReset);
  assert.equal(await tmfResponse(a), TaskResponse.functionComplete);
  assert.deepEqual(senseOf((await b.scsi(TUR)).sense), [6, 0x29, 0x00]);
  a.close();
  b.close();
});

test('CLEAR TASK SET aborts the other session\'s pending write and leaves it 2F/00; TARGET COLD RESET closes every session', async () => {
  const a = await session();
  const b = await session();
  const itt = b.newItt();
  b.send({ opcode: IscsiOpcode.scsiCommand, immediate: false, final: true, read: false, write: true, attribute: 1, lun: 0n, itt, expectedDataTransferLength: 4096, cmdSN: b.cmdSN, expStatSN: b.expStatSN, cdb: Buffer.concat([write10(0, 8), Buffer.alloc(6)]), ahs: Buffer.alloc(0), data: Buffer.alloc(0) });
  b.cmdSN++;
  assert.equal((await b.next()).opcode, IscsiOpcode.r2t);
  tmf(a, TaskFunction.clearTaskSet);
  assert.equal(await tmfResponse(a), TaskResponse.functionComplete);
  assert.deepEqual(senseOf((await b.scsi(TUR)).sense), [6, 0x2f, 0x00]);
  assert.equal((await a.scsi(TUR)).status, 0, 'the requester gets no unit attention');
  tmf(a, TaskFunction.targetColdReset);
  assert.equal(await tmfResponse(a), TaskResponse.functionComplete);
  assert.equal(await a.waitClosed(), true);
  assert.equal(await b.waitClosed(), true);
});

test('NOP-In ping on an idle connection: answered keeps it, silence drops it (dead peer)', async () => {
  const server = await serve({ nopInIntervalMs: 100, nopInTimeoutMs: 150 });
  const live = await session({ target: RW }, server);
  const dead = await session({ target: RW }, server);
  dead.socket.pause(); // reads nothing, answers nothing
  // The live initiator answers every ping with a NOP-Out echoing its TTT (§11.18), for 600 ms.
  let pings = 0;
  const until = Date.now() + 600;
  while (Date.now() < until) {
    const ping = await live.next(2000);
    assert.ok(ping.opcode === IscsiOpcode.nopIn && ping.itt === 0xffffffff && ping.ttt !== 0xffffffff);
    if (ping.opcode !== IscsiOpcode.nopIn) return;
    assert.equal(ping.statSN, live.expStatSN, 'a ping does not advance StatSN');
    pings++;
    live.send({ opcode: IscsiOpcode.nopOut, immediate: true, lun: 0n, itt: 0xffffffff, ttt: ping.ttt, cmdSN: live.cmdSN, expStatSN: live.expStatSN, data: Buffer.alloc(0) });
  }
  assert.ok(pings >= 3, `${pings} pings`);
  assert.equal(live.closed, false);
  dead.socket.resume(); // to see the close
  assert.equal(await dead.waitClosed(1000), true);
  assert.ok(metrics.value('diskless_iscsi_dropped_total', { reason: 'nop-timeout' }) >= 1);
  live.close();
});

test('session reinstatement: a second login with the same initiator name and ISID drops the first (iPXE, then the OS)', async () => {
  const first = await session({ target: RW, isid: 0x23d000000001 });
  const second = await session({ target: RW, isid: 0x23d000000001 });
  assert.equal(await first.waitClosed(), true);
  assert.equal((await second.scsi(TUR)).status, 0);
  const other = await session({ target: RW, isid: 0x23d000000002 });
  assert.equal(second.closed, false, 'another ISID is another session');
  other.close();
  second.close();
});

test('mutual CHAP over TCP; allow list refuses 0x0202', async () => {
  const m = await session({ target: MUTUAL, chap: { username: 'node1', secret: 'secretsecret1' }, mutual: { username: 'target1', secret: 'targetsecret1' } });
  assert.equal((await m.scsi(TUR)).status, 0);
  m.close();
  const refused = await IscsiTestClient.connect(shared.port);
  const r = await refused.login({ target: ACL, initiatorName: 'iqn.2026-11.io.diskless:stranger' });
  assert.equal((r.statusClass << 8) | r.statusDetail, LoginStatus.authorizationFailure);
  const ok = await session({ target: ACL, initiatorName: 'iqn.2026-11.io.diskless:allowed' });
  ok.close();
});

test('stop asks logged-in initiators to log out (Async Message event 1) before closing', async () => {
  const server = await serve({ shutdownGraceMs: 1000 });
  const c = await session({ target: RW }, server);
  const stopping = server.stop();
  const msg = await c.next(2000);
  assert.ok(msg.opcode === IscsiOpcode.asyncMessage && msg.asyncEvent === 1 && msg.parameter3 === 1);
  c.send({ opcode: IscsiOpcode.logoutRequest, immediate: true, reason: 0, itt: c.newItt(), cid: 0, cmdSN: c.cmdSN, expStatSN: c.expStatSN, data: Buffer.alloc(0) });
  const lo = await c.next();
  assert.ok(lo.opcode === IscsiOpcode.logoutResponse && lo.response === 0);
  const t0 = Date.now();
  await stopping;
  assert.ok(Date.now() - t0 < 900, 'stop ends when the initiator has logged out, not at the grace deadline');
});

test('a DataSN gap or bad offset ends the write with ABORTED COMMAND (47/05, 4B/05) and the session stays up (ERL 0, RFC 7143 §7.9)', async () => {
  const c = await session();
  for (const [field, asc] of [['dataSN', [0x47, 0x05]], ['bufferOffset', [0x4b, 0x05]]] as const) {
    const itt = c.newItt();
    c.send({ opcode: IscsiOpcode.scsiCommand, immediate: false, final: true, read: false, write: true, attribute: 1, lun: 0n, itt, expectedDataTransferLength: 1024, cmdSN: c.cmdSN, expStatSN: c.expStatSN, cdb: Buffer.concat([write10(200, 2), Buffer.alloc(6)]), ahs: Buffer.alloc(0), data: Buffer.alloc(0) });
    c.cmdSN++;
    const r2t = await c.next();
    assert.equal(r2t.opcode, IscsiOpcode.r2t);
    if (r2t.opcode !== IscsiOpcode.r2t) return;
    const pdu = { opcode: IscsiOpcode.dataOut, final: true, lun: 0n, itt, ttt: r2t.ttt, expStatSN: c.expStatSN, dataSN: 0, bufferOffset: 0, data: Buffer.alloc(1024) } as const;
    c.send({ ...pdu, [field]: field === 'dataSN' ? 27 : 512 });
    const resp = await c.next();
    assert.ok(resp.opcode === IscsiOpcode.scsiResponse && resp.status === 2, `${field}: CHECK CONDITION`);
    if (resp.opcode === IscsiOpcode.scsiResponse) assert.deepEqual(senseOf(resp.data.subarray(2)), [0x0b, ...asc]);
    c.send(pdu); // the rest of the task's Data-Out is discarded
  }
  assert.equal((await c.scsi(TUR)).status, 0);
  c.close();
});
