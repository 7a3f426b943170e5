import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IscsiOpcode, RESERVED_TAG } from '../../wire/iscsi/iscsi-constants.js';
import type { DataOut, ScsiCommand } from '../../wire/iscsi/iscsi-pdu.js';
import type { CommandPlan, ScsiResult } from './logical-unit.js';
import { RFC_DEFAULT_PARAMETERS, type SessionParameters } from './operational-keys.js';
import { WriteTask } from './write-task.js';
import { commandResponse } from './command-response.js';

const cmd = (edtl: number, immediate: number, final: boolean, write = true): ScsiCommand => ({
  opcode: IscsiOpcode.scsiCommand, immediate: false, final, read: false, write, attribute: 1, lun: 0n, itt: 9, expectedDataTransferLength: edtl, cmdSN: 1, expStatSN: 1, cdb: Buffer.alloc(16), ahs: Buffer.alloc(0), data: Buffer.alloc(immediate, 1),
});
const out = (ttt: number, dataSN: number, bufferOffset: number, len: number, final: boolean): DataOut => ({ opcode: IscsiOpcode.dataOut, final, lun: 0n, itt: 9, ttt, expStatSN: 1, dataSN, bufferOffset, data: Buffer.alloc(len, 2) });

/** A real dataOut plan whose run records what it was given. */
function plan(length: number): { plan: CommandPlan; got: Buffer[][] } {
  const got: Buffer[][] = [];
  return { got, plan: { kind: 'dataOut', length, run: async (d): Promise<ScsiResult> => (got.push([...d]), { status: 0 }) } };
}
let tag = 100;
const params = (o: Partial<SessionParameters>): SessionParameters => ({ ...RFC_DEFAULT_PARAMETERS, ...o });

test('immediate + unsolicited + R2T sequences; DataSN restarts per sequence', async () => {
  const p = plan(20000);
  const t = new WriteTask(cmd(20000, 1000, false), p.plan, params({ initialR2T: false, firstBurstLength: 4000, maxBurstLength: 10000 }), () => tag++);
  assert.equal(t.next().kind, 'wait');
  assert.equal(t.receive(out(RESERVED_TAG, 0, 1000, 2000, false)), null);
  assert.equal(t.receive(out(RESERVED_TAG, 1, 3000, 1000, true)), null);
  const r1 = t.next();
  assert.deepEqual(r1.kind === 'r2t' && [r1.offset, r1.length, r1.r2tSN], [4000, 10000, 0]);
  if (r1.kind !== 'r2t') return;
  assert.equal(t.next().kind, 'wait', 'one R2T outstanding');
  assert.equal(t.receive(out(r1.ttt, 0, 4000, 6000, false)), null);
  assert.equal(t.receive(out(r1.ttt, 1, 10000, 4000, true)), null);
  const r2 = t.next();
  assert.deepEqual(r2.kind === 'r2t' && [r2.offset, r2.length, r2.r2tSN], [14000, 6000, 1]);
  if (r2.kind !== 'r2t') return;
  assert.equal(t.receive(out(r2.ttt, 0, 14000, 6000, true)), null);
  const run = t.next();
  assert.equal(run.kind, 'run');
  if (run.kind === 'run') await run.run();
  assert.equal(p.got[0]!.reduce((n, b) => n + b.length, 0), 20000);
});

test('protocol violations are reported, not absorbed', () => {
  const mk = () => new WriteTask(cmd(8192, 0, false), plan(8192).plan, params({ initialR2T: false, firstBurstLength: 4096 }), () => tag++);
  assert.equal(mk().receive(out(RESERVED_TAG, 0, 512, 512, false)), 'data-out-offset');
  assert.equal(mk().receive(out(RESERVED_TAG, 27, 0, 512, false)), 'data-out-datasn');
  assert.equal(mk().receive(out(RESERVED_TAG, 0, 0, 8192, true)), 'data-out-unsolicited-overrun');
  assert.equal(mk().receive(out(1234, 0, 0, 512, true)), 'data-out-unknown-ttt');
  const t = new WriteTask(cmd(8192, 0, true), plan(8192).plan, params({}), () => 77);
  const r = t.next();
  assert.equal(r.kind, 'r2t');
  assert.equal(t.receive(out(77, 0, 0, 4096, true)), 'data-out-early-final');
  const u = new WriteTask(cmd(8192, 0, true), plan(8192).plan, params({}), () => 78);
  u.next();
  assert.equal(u.receive(out(78, 0, 0, 8192, false)), 'data-out-missing-final');
});

test('EDTL below the CDB length gathers and writes only EDTL; a failing plan still absorbs unsolicited data', async () => {
  const p = plan(1024);
  const t = new WriteTask(cmd(512, 512, true), p.plan, params({}), () => tag++);
  const run = t.next();
  assert.ok(run.kind === 'run' && run.wanted === 1024 && run.written === 512);
  if (run.kind === 'run') await run.run();
  const fail: CommandPlan = { kind: 'fail', result: { status: 2, sense: Buffer.alloc(18) } };
  const f = new WriteTask(cmd(4096, 0, false), fail, params({ initialR2T: false, firstBurstLength: 2048 }), () => tag++);
  assert.equal(f.next().kind, 'wait');
  assert.equal(f.receive(out(RESERVED_TAG, 0, 0, 2048, true)), null);
  const done = f.next();
  assert.ok(done.kind === 'run', 'no R2T for a failing command');
  if (done.kind === 'run') assert.equal((await done.run()).status, 2);
});

test('command responses: Data-In splitting, residuals both ways, sense in a SCSI Response', () => {
  let sn = 10;
  const ctx = { nextStatSN: () => sn++, expCmdSN: 5, maxCmdSN: 68, maxRecvDataSegmentLength: 1000, maxBurstLength: 2500 };
  const read = { ...cmd(3000, 0, true, false), read: true };
  const pdus = commandResponse(read, { status: 0, data: Buffer.alloc(3500, 7) }, 0, ctx);
  assert.deepEqual(pdus.map((p) => (p.opcode === IscsiOpcode.dataIn ? [p.bufferOffset, p.data.length, p.final, p.statusPresent] : [])), [[0, 1000, false, false], [1000, 1000, false, false], [2000, 500, true, false], [2500, 500, true, true]]);
  const last = pdus[3]!;
  assert.ok(last.opcode === IscsiOpcode.dataIn && last.overflow && last.residualCount === 500 && last.statSN === 10);
  const short = commandResponse({ ...read, expectedDataTransferLength: 255 }, { status: 0, data: Buffer.alloc(36) }, 0, ctx);
  assert.ok(short[0]!.opcode === IscsiOpcode.dataIn && short[0]!.underflow && short[0]!.residualCount === 219);
  const check = commandResponse(read, { status: 2, sense: Buffer.alloc(18, 1) }, 0, ctx);
  assert.ok(check[0]!.opcode === IscsiOpcode.scsiResponse && check[0]!.status === 2 && check[0]!.data.readUInt16BE(0) === 18 && check[0]!.underflow);
  const write = commandResponse(cmd(2048, 0, true), { status: 0 }, 1024, ctx);
  assert.ok(write[0]!.opcode === IscsiOpcode.scsiResponse && write[0]!.underflow && write[0]!.residualCount === 1024 && write[0]!.data.length === 0);
});
