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

/** The single R2T of a step (MaxOutstandingR2T=1). */
function one(step: ReturnType<WriteTask['next']>) {
  assert.equal(step.kind, 'r2t');
  if (step.kind !== 'r2t') throw new Error('no R2T');
  assert.equal(step.r2ts.length, 1);
  return step.r2ts[0]!;
}

test('immediate + unsolicited + R2T sequences; DataSN restarts per sequence', async () => {
  const p = plan(20000);
  const t = new WriteTask(cmd(20000, 1000, false), p.plan, params({ initialR2T: false, firstBurstLength: 4000, maxBurstLength: 10000 }), () => tag++);
  assert.equal(t.next().kind, 'wait');
  assert.equal(t.receive(out(RESERVED_TAG, 0, 1000, 2000, false)), null);
  assert.equal(t.receive(out(RESERVED_TAG, 1, 3000, 1000, true)), null);
  const r1 = one(t.next());
  assert.deepEqual([r1.offset, r1.length, r1.r2tSN], [4000, 10000, 0]);
  assert.equal(t.next().kind, 'wait', 'one R2T outstanding');
  assert.equal(t.receive(out(r1.ttt, 0, 4000, 6000, false)), null);
  assert.equal(t.receive(out(r1.ttt, 1, 10000, 4000, true)), null);
  const r2 = one(t.next());
  assert.deepEqual([r2.offset, r2.length, r2.r2tSN], [14000, 6000, 1]);
  assert.equal(t.receive(out(r2.ttt, 0, 14000, 6000, true)), null);
  const run = t.next();
  assert.equal(run.kind, 'run');
  if (run.kind === 'run') await run.run();
  assert.equal(p.got[0]!.reduce((n, b) => n + b.length, 0), 20000);
});

/** A buffer whose byte i is i mod 251: misplaced segments show up in the gathered data. */
const pattern = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => i % 251));

test('MaxOutstandingR2T=3: three R2Ts at once (own TTT, R2TSN 0..2, ascending offsets, <= MaxBurstLength), one more per completed sequence, interleaved Data-Out gathered in offset order', async () => {
  const p = plan(9000);
  const w = pattern(9000);
  const t = new WriteTask(cmd(9000, 1000, true), p.plan, params({ initialR2T: true, maxBurstLength: 2000, maxOutstandingR2T: 3 }), () => tag++);
  const first = t.next();
  assert.ok(first.kind === 'r2t');
  if (first.kind !== 'r2t') return;
  assert.deepEqual(first.r2ts.map((r) => [r.r2tSN, r.offset, r.length]), [[0, 1000, 2000], [1, 3000, 2000], [2, 5000, 2000]]);
  assert.equal(new Set(first.r2ts.map((r) => r.ttt)).size, 3, 'a TTT per R2T');
  assert.equal(t.outstandingR2Ts, 3);
  assert.equal(t.next().kind, 'wait', 'no fourth R2T while three are outstanding');
  const [a, b, c] = first.r2ts as [typeof first.r2ts[0], typeof first.r2ts[0], typeof first.r2ts[0]];
  const d = (ttt: number, sn: number, off: number, len: number, fin: boolean): DataOut => ({ ...out(ttt, sn, off, len, fin), data: w.subarray(off, off + len) });
  // Sequences interleave; each has its own DataSN from 0.
  assert.equal(t.receive(d(b.ttt, 0, 3000, 1500, false)), null);
  assert.equal(t.receive(d(a.ttt, 0, 1000, 1000, false)), null);
  assert.equal(t.receive(d(b.ttt, 1, 4500, 500, true)), null);
  const more = one(t.next());
  assert.deepEqual([more.r2tSN, more.offset, more.length], [3, 7000, 2000], 'a completed sequence frees a slot for the next R2T');
  assert.equal(t.next().kind, 'wait', 'nothing left to solicit, three sequences open');
  assert.equal(t.receive(d(more.ttt, 0, 7000, 2000, true)), null);
  assert.equal(t.receive(d(c.ttt, 0, 5000, 2000, true)), null);
  assert.equal(t.receive(d(a.ttt, 1, 2000, 1000, true)), null);
  const run = t.next();
  assert.ok(run.kind === 'run' && run.received === 9000 && run.written === 9000);
  if (run.kind === 'run') await run.run();
  assert.deepEqual(Buffer.concat(p.got[0]!), Buffer.concat([Buffer.alloc(1000, 1), w.subarray(1000)]));
});

test('several outstanding R2Ts: each sequence enforces its own offset, DataSN, length and F bit; a retired TTT is unknown', () => {
  const mk = () => {
    const t = new WriteTask(cmd(8192, 0, true), plan(8192).plan, params({ initialR2T: true, maxBurstLength: 4096, maxOutstandingR2T: 2 }), () => tag++);
    const s = t.next();
    if (s.kind !== 'r2t' || s.r2ts.length !== 2) throw new Error('expected two R2Ts');
    return { t, a: s.r2ts[0]!, b: s.r2ts[1]! };
  };
  let m = mk();
  assert.equal(m.t.receive(out(m.b.ttt, 0, 0, 512, false)), 'data-out-offset', 'offset of the other sequence');
  m = mk();
  assert.equal(m.t.receive(out(m.a.ttt, 0, 0, 512, false)), null);
  assert.equal(m.t.receive(out(m.b.ttt, 1, 4096, 512, false)), 'data-out-datasn', 'DataSN is per sequence, not per task');
  m = mk();
  assert.equal(m.t.receive(out(m.b.ttt, 0, 4096, 8192, true)), 'data-out-r2t-overrun');
  m = mk();
  assert.equal(m.t.receive(out(m.a.ttt, 0, 0, 4096, true)), null);
  assert.equal(m.t.receive(out(m.a.ttt, 1, 4096, 512, true)), 'data-out-unknown-ttt', 'a finished sequence takes nothing more');
  m = mk();
  assert.equal(m.t.receive(out(RESERVED_TAG, 0, 0, 512, true)), 'data-out-unsolicited-overrun', 'InitialR2T=Yes: no unsolicited Data-Out');
});

test('MaxOutstandingR2T above what is left issues only what is needed', () => {
  const t = new WriteTask(cmd(3000, 0, true), plan(3000).plan, params({ initialR2T: true, maxBurstLength: 2048, maxOutstandingR2T: 8 }), () => tag++);
  const s = t.next();
  assert.ok(s.kind === 'r2t' && s.r2ts.length === 2 && s.r2ts[1]!.offset === 2048 && s.r2ts[1]!.length === 952);
});

test('protocol violations are reported, not absorbed', () => {
  const mk = () => new WriteTask(cmd(8192, 0, false), plan(8192).plan, params({ initialR2T: false, firstBurstLength: 4096 }), () => tag++);
  assert.equal(mk().receive(out(RESERVED_TAG, 0, 512, 512, false)), 'data-out-offset');
  assert.equal(mk().receive(out(RESERVED_TAG, 27, 0, 512, false)), 'data-out-datasn');
  assert.equal(mk().receive(out(RESERVED_TAG, 0, 0, 8192, true)), 'data-out-unsolicited-overrun');
  assert.equal(mk().receive(out(1234, 0, 0, 512, true)), 'data-out-unknown-ttt');
  const t = new WriteTask(cmd(8192, 0, true), plan(8192).plan, params({}), () => 77);
  assert.equal(one(t.next()).ttt, 77);
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
