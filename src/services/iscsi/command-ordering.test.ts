/**
 * Over real TCP (issue 3): several outstanding R2Ts per write (MaxOutstandingR2T, §13.17),
 * CmdSN ordering with commands held behind a gap (§3.2.2.1), and MaxCmdSN from the queue
 * depth (§4.2.2.1). The test client sends PDUs by hand to control order and timing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IscsiTestClient } from '../../../test/support/iscsi-client.js';
import { IscsiOpcode, RESERVED_TAG, TaskFunction, TaskResponse } from '../../wire/iscsi/iscsi-constants.js';
import type { IscsiPdu, ReadyToTransfer as R2t } from '../../wire/iscsi/iscsi-pdu.js';
import { Metrics } from '../../observe/metrics.js';
import { silentLogger } from '../../observe/logger.js';
import { FileStorageDriver } from '../../store/file/file-storage-driver.js';
import type { BlockDevice } from '../../store/block-device.js';
import { IscsiServer, type IscsiServerOptions } from './iscsi-server.js';
import { StaticTargetResolver } from './static-target-resolver.js';

const IQN = 'iqn.2026-11.io.diskless:ordering';
let dir: string;
let device: BlockDevice;
const servers: IscsiServer[] = [];
const metrics = new Metrics();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'di-iscsi-order-'));
  const store = new FileStorageDriver({ dataDir: dir });
  await store.create('v', { size: 8 * 1024 * 1024 });
  device = await store.open('v');
});

after(async () => {
  for (const s of servers) await s.stop();
  await device.close();
  await rm(dir, { recursive: true, force: true });
});

async function serve(extra: Partial<IscsiServerOptions> = {}): Promise<IscsiServer> {
  const server = new IscsiServer({ address: '127.0.0.1', port: 0, log: silentLogger(), metrics, shutdownGraceMs: 0, nopInIntervalMs: 0, targets: new StaticTargetResolver([{ name: IQN, device, readOnly: false }]), ...extra });
  await server.start();
  servers.push(server);
  return server;
}

const KEYS: Array<[string, string]> = [['MaxRecvDataSegmentLength', '65536'], ['MaxBurstLength', '65536'], ['FirstBurstLength', '65536'], ['MaxOutstandingR2T', '8']];

async function session(server: IscsiServer, keys: Array<[string, string]>): Promise<IscsiTestClient> {
  const c = await IscsiTestClient.connect(server.port);
  const r = await c.login({ target: IQN, keys });
  assert.equal((r.statusClass << 8) | r.statusDetail, 0, JSON.stringify(c.lastKeys));
  return c;
}

function write10(lba: number, blocks: number): Buffer {
  const b = Buffer.alloc(16);
  b[0] = 0x2a;
  b.writeUInt32BE(lba, 2);
  b.writeUInt16BE(blocks, 7);
  return b;
}

/** Sends a SCSI command PDU with an explicit CmdSN; returns its ITT. */
function command(c: IscsiTestClient, cdb: Buffer, o: { cmdSN: number; edtl?: number; immediateData?: Buffer; final?: boolean; immediate?: boolean; write?: boolean }): number {
  const itt = c.newItt();
  const data = o.immediateData ?? Buffer.alloc(0);
  const edtl = o.edtl ?? data.length;
  c.send({ opcode: IscsiOpcode.scsiCommand, immediate: o.immediate ?? false, final: o.final ?? true, read: false, write: o.write ?? edtl > 0, attribute: 1, lun: 0n, itt, expectedDataTransferLength: edtl, cmdSN: o.cmdSN, expStatSN: c.expStatSN, cdb, ahs: Buffer.alloc(0), data });
  return itt;
}

function dataOut(c: IscsiTestClient, itt: number, ttt: number, dataSN: number, offset: number, data: Buffer, final: boolean): void {
  c.send({ opcode: IscsiOpcode.dataOut, final, lun: 0n, itt, ttt, expStatSN: c.expStatSN, dataSN, bufferOffset: offset, data });
}

/** An immediate NOP-Out; resolves with the NOP-In (its ExpCmdSN/MaxCmdSN show the window). */
async function ping(c: IscsiTestClient, cmdSN: number): Promise<{ expCmdSN: number; maxCmdSN: number }> {
  const itt = c.newItt();
  c.send({ opcode: IscsiOpcode.nopOut, immediate: true, lun: 0n, itt, ttt: RESERVED_TAG, cmdSN, expStatSN: c.expStatSN, data: Buffer.alloc(0) });
  const p = await c.next();
  assert.ok(p.opcode === IscsiOpcode.nopIn && p.itt === itt, `expected the NOP-In, got opcode ${p.opcode}`);
  return { expCmdSN: p.expCmdSN, maxCmdSN: p.maxCmdSN };
}

/** Every PDU that arrives within `ms`. */
async function drain(c: IscsiTestClient, ms: number): Promise<IscsiPdu[]> {
  const out: IscsiPdu[] = [];
  for (;;) {
    try {
      out.push(await c.next(ms));
    } catch {
      return out;
    }
  }
}

async function status(c: IscsiTestClient, itt: number): Promise<{ status: number; expCmdSN: number; maxCmdSN: number }> {
  const p = await c.next();
  assert.ok(p.opcode === IscsiOpcode.scsiResponse && p.itt === itt, `expected the SCSI Response of 0x${itt.toString(16)}, got opcode 0x${p.opcode.toString(16)} itt 0x${('itt' in p ? p.itt : 0).toString(16)}`);
  return { status: p.status, expCmdSN: p.expCmdSN, maxCmdSN: p.maxCmdSN };
}

test('MaxOutstandingR2T: min of the offers (8 -> 4, 2 -> 2); a 512 KiB write gets 4 R2Ts at once, a new one as each sequence ends, Data-Out interleaved across sequences', async () => {
  const server = await serve();
  const two = await session(server, [...KEYS.slice(0, 3), ['MaxOutstandingR2T', '2']]);
  assert.equal(two.lastKeys.MaxOutstandingR2T, '2');
  two.close();
  const c = await session(server, [...KEYS, ['InitialR2T', 'Yes']]);
  assert.equal(c.lastKeys.MaxOutstandingR2T, '4');
  assert.equal(c.lastKeys.InitialR2T, 'Yes');
  const size = 512 * 1024;
  const w = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) w.writeUInt32BE(i, i);
  const lba = 2048;
  const itt = command(c, write10(lba, size / 512), { cmdSN: c.cmdSN, edtl: size });
  c.cmdSN++;
  // Nothing answered yet: exactly four R2Ts come, then silence.
  const first = (await drain(c, 300)) as R2t[];
  assert.deepEqual(first.map((p) => [p.opcode, p.r2tSN, p.bufferOffset, p.desiredDataTransferLength]), [0, 1, 2, 3].map((n) => [IscsiOpcode.r2t, n, n * 65536, 65536]));
  assert.equal(new Set(first.map((p) => p.ttt)).size, 4, 'a TTT per R2T');
  // Interleave: half of R2T 1, all of R2T 0, rest of R2T 1 (DataSN per sequence).
  const half = 32768;
  const [r0, r1, r2, r3] = first as [R2t, R2t, R2t, R2t];
  dataOut(c, itt, r1.ttt, 0, r1.bufferOffset, w.subarray(r1.bufferOffset, r1.bufferOffset + half), false);
  dataOut(c, itt, r0.ttt, 0, 0, w.subarray(0, half), false);
  dataOut(c, itt, r0.ttt, 1, half, w.subarray(half, 65536), true);
  const next1 = await c.next();
  assert.ok(next1.opcode === IscsiOpcode.r2t && next1.r2tSN === 4 && next1.bufferOffset === 4 * 65536, 'R2T 0 done: R2T 4 goes out');
  dataOut(c, itt, r1.ttt, 1, r1.bufferOffset + half, w.subarray(r1.bufferOffset + half, r1.bufferOffset + 65536), true);
  const next2 = await c.next();
  assert.ok(next2.opcode === IscsiOpcode.r2t && next2.r2tSN === 5 && next2.bufferOffset === 5 * 65536);
  const pending: R2t[] = [r2, r3, next1, next2];
  let issued = 6;
  for (let r = pending.shift(); r; r = pending.shift()) {
    dataOut(c, itt, r.ttt, 0, r.bufferOffset, w.subarray(r.bufferOffset, r.bufferOffset + r.desiredDataTransferLength), true);
    if (issued === size / 65536) continue;
    const more = await c.next();
    assert.ok(more.opcode === IscsiOpcode.r2t && more.r2tSN === issued && more.bufferOffset === issued * 65536, `R2T ${issued}`);
    issued++;
    pending.push(more);
  }
  assert.equal((await status(c, itt)).status, 0);
  const back = await device.read(lba * 512, size);
  assert.ok(back.equals(w), 'the bytes of every sequence land at their offsets');
  c.close();
});

test('CmdSN order: a write sent ahead of a gap waits for it, so two writes to one block take effect in CmdSN order; immediate commands pass the gap', async () => {
  const server = await serve();
  const c = await session(server, [...KEYS, ['InitialR2T', 'No'], ['ImmediateData', 'Yes']]);
  const lba = 100;
  const A = Buffer.alloc(1024, 0xaa);
  const B = Buffer.alloc(1024, 0xbb);
  const n = c.cmdSN;
  // n+1 first (B: 512 immediate + 512 unsolicited Data-Out, both before n exists), then n (A).
  const ittB = command(c, write10(lba, 2), { cmdSN: n + 1, edtl: 1024, immediateData: B.subarray(0, 512), final: false });
  dataOut(c, ittB, RESERVED_TAG, 0, 512, B.subarray(512), true);
  // A duplicate of the held CmdSN is dropped and counted.
  const dup = metrics.value('diskless_iscsi_dropped_total', { reason: 'cmdsn-duplicate' });
  command(c, Buffer.from([0, 0, 0, 0, 0, 0]), { cmdSN: n + 1 });
  assert.deepEqual(await drain(c, 200), [], 'the held write is not run');
  assert.equal(metrics.value('diskless_iscsi_dropped_total', { reason: 'cmdsn-duplicate' }), dup + 1);
  // An immediate command (TEST UNIT READY, I bit) runs at once; ExpCmdSN still says n.
  const tur = command(c, Buffer.from([0, 0, 0, 0, 0, 0]), { cmdSN: n, immediate: true });
  const t = await status(c, tur);
  assert.deepEqual([t.status, t.expCmdSN], [0, n]);
  const ittA = command(c, write10(lba, 2), { cmdSN: n, edtl: 1024, immediateData: A });
  const a = await status(c, ittA);
  const b = await status(c, ittB);
  assert.deepEqual([a.status, b.status, b.expCmdSN], [0, 0, n + 2]);
  const back = await device.read(lba * 512, 1024);
  assert.ok(back.equals(B), `CmdSN n+1 wrote last (got 0x${back[0]!.toString(16)})`);
  c.cmdSN = n + 2;
  c.close();
});

test('CmdSN order: ABORT TASK of a held command drops it and its CmdSN counts; RefCmdSN of one not yet arrived counts too (RFC 7143 §11.5.1)', async () => {
  const server = await serve();
  const c = await session(server, KEYS);
  const n = c.cmdSN;
  const before = await device.read(300 * 512, 512);
  const held = command(c, write10(300, 1), { cmdSN: n + 1, edtl: 512, immediateData: Buffer.alloc(512, 0x77) });
  const abort = (ref: number, refCmdSN: number) => {
    const itt = c.newItt();
    c.send({ opcode: IscsiOpcode.taskManagementRequest, immediate: true, function: TaskFunction.abortTask, lun: 0n, itt, referencedTaskTag: ref, cmdSN: n + 3, expStatSN: c.expStatSN, refCmdSN, expDataSN: 0, data: Buffer.alloc(0) });
    return itt;
  };
  abort(held, n + 1);
  let r = await c.next();
  assert.ok(r.opcode === IscsiOpcode.taskManagementResponse && r.response === TaskResponse.functionComplete);
  // Never-sent CmdSN n+2 (RefCmdSN inside the window, below the TMF's CmdSN): complete, and it counts as received.
  abort(0x7777, n + 2);
  r = await c.next();
  assert.ok(r.opcode === IscsiOpcode.taskManagementResponse && r.response === TaskResponse.functionComplete);
  const tur = command(c, Buffer.from([0, 0, 0, 0, 0, 0]), { cmdSN: n });
  const s = await status(c, tur);
  assert.equal(s.expCmdSN, n + 3, 'n ran, n+1 (aborted) and n+2 (counted) are behind ExpCmdSN');
  assert.deepEqual(await drain(c, 200), [], 'the aborted write never answers');
  const after = await device.read(300 * 512, 512);
  assert.ok(after.equals(before), 'the aborted write never ran');
  // Outside the window still: CmdSN n+1 again is stale now.
  const stale = metrics.value('diskless_iscsi_dropped_total', { reason: 'cmdsn-out-of-window' });
  command(c, Buffer.from([0, 0, 0, 0, 0, 0]), { cmdSN: n + 1 });
  assert.deepEqual(await drain(c, 200), []);
  assert.equal(metrics.value('diskless_iscsi_dropped_total', { reason: 'cmdsn-out-of-window' }), stale + 1);
  c.close();
});

test('MaxCmdSN follows the queue depth: the window closes (MaxCmdSN = ExpCmdSN-1) with 4 commands outstanding, a command beyond it is dropped, and it reopens as commands complete', async () => {
  const server = await serve({ commandWindow: 4 });
  const c = await session(server, [...KEYS, ['InitialR2T', 'Yes']]);
  const n = c.cmdSN;
  assert.deepEqual(await ping(c, n), { expCmdSN: n, maxCmdSN: n + 3 });
  // Four writes waiting for their data (InitialR2T=Yes): each R2T shows the window.
  const itts: number[] = [];
  const r2ts: R2t[] = [];
  for (let i = 0; i < 4; i++) {
    itts.push(command(c, write10(400 + i, 1), { cmdSN: n + i, edtl: 512 }));
    const r = await c.next();
    assert.ok(r.opcode === IscsiOpcode.r2t);
    assert.deepEqual([r.expCmdSN, r.maxCmdSN], [n + i + 1, n + 3], `after command ${i}`);
    r2ts.push(r);
  }
  assert.deepEqual(await ping(c, n + 4), { expCmdSN: n + 4, maxCmdSN: n + 3 }, 'closed: MaxCmdSN = ExpCmdSN - 1');
  const dropped = metrics.value('diskless_iscsi_dropped_total', { reason: 'cmdsn-out-of-window' });
  command(c, Buffer.from([0, 0, 0, 0, 0, 0]), { cmdSN: n + 4 });
  assert.deepEqual(await drain(c, 200), [], 'a command beyond MaxCmdSN is ignored');
  assert.equal(metrics.value('diskless_iscsi_dropped_total', { reason: 'cmdsn-out-of-window' }), dropped + 1);
  // One completes: the window reopens by one.
  dataOut(c, itts[0]!, r2ts[0]!.ttt, 0, 0, Buffer.alloc(512, 1), true);
  const done = await status(c, itts[0]!);
  assert.deepEqual([done.status, done.expCmdSN, done.maxCmdSN], [0, n + 4, n + 4]);
  const tur = command(c, Buffer.from([0, 0, 0, 0, 0, 0]), { cmdSN: n + 4 });
  assert.deepEqual(await status(c, tur), { status: 0, expCmdSN: n + 5, maxCmdSN: n + 5 }, 'TUR done: 3 outstanding, ExpCmdSN n+5, one slot');
  for (let i = 1; i < 4; i++) dataOut(c, itts[i]!, r2ts[i]!.ttt, 0, 0, Buffer.alloc(512, 1), true);
  const last = [await status(c, itts[1]!), await status(c, itts[2]!), await status(c, itts[3]!)];
  assert.deepEqual(last.map((s) => s.maxCmdSN), [n + 6, n + 7, n + 8], 'each completion opens one more');
  assert.deepEqual(await ping(c, n + 5), { expCmdSN: n + 5, maxCmdSN: n + 8 });
  c.close();
});

test('a new I_T nexus starts with UNIT ATTENTION 29/00; the same initiator port logging in again gets 29/07 (I_T nexus loss); each is reported once', async () => {
  const server = await serve();
  const sense = async (c: IscsiTestClient) => {
    const r = await c.scsi(Buffer.from([0, 0, 0, 0, 0, 0]));
    return r.status === 0 ? 'good' : `${(r.sense[2]! & 0x0f).toString(16)}/${r.sense[12]!.toString(16)}/${r.sense[13]!.toString(16).padStart(2, '0')}`;
  };
  const isid = 0x400000abcdef;
  const login = async () => {
    const c = await IscsiTestClient.connect(server.port);
    const r = await c.login({ target: IQN, isid, initiatorName: 'iqn.2026-11.io.diskless:ua-probe', keepUnitAttention: true });
    assert.equal(r.statusClass, 0);
    return c;
  };
  const first = await login();
  const inquiry = await first.scsi(Buffer.from([0x12, 0, 0, 0, 36, 0]), { read: 36 });
  assert.equal(inquiry.status, 0, 'INQUIRY is not held up by a unit attention');
  assert.deepEqual([await sense(first), await sense(first)], ['6/29/00', 'good']);
  first.close();
  await first.waitClosed();
  const again = await login();
  assert.deepEqual([await sense(again), await sense(again)], ['6/29/07', 'good']);
  again.close();
});
