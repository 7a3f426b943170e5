import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStorageDriver } from '../../store/file/file-storage-driver.js';
import { decodeSense } from '../../wire/scsi/sense.js';
import { LogicalUnit, unitIdentity, type CommandPlan, type ScsiResult } from './logical-unit.js';

const cdb = (hex: string) => Buffer.from(hex.padEnd(32, '0'), 'hex');

async function exec(plan: CommandPlan, data: Buffer[] = []): Promise<ScsiResult> {
  if (plan.kind === 'fail') return plan.result;
  if (plan.kind === 'dataOut') return plan.run(data);
  return plan.run();
}

async function unitPair(t: { after(fn: () => Promise<void>): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'dl-lu-'));
  const store = new FileStorageDriver({ dataDir: dir });
  await store.create('v', { size: 1024 * 1024 });
  const device = await store.open('v');
  t.after(async () => {
    await device.close();
    await rm(dir, { recursive: true, force: true });
  });
  const id = unitIdentity('iqn.2026-11.io.test:lu', 1);
  return { device, a: new LogicalUnit(device, false, id, { initiator: 'iqn.i:a', isid: 1 }), b: new LogicalUnit(device, false, id, { initiator: 'iqn.i:b', isid: 2 }) };
}

test('COMPARE AND WRITE: writes on match, MISCOMPARE with the offset in INFORMATION otherwise', async (t) => {
  const { device, a } = await unitPair(t);
  await device.write(0, Buffer.alloc(1024, 0x41));
  const ok = await exec(a.plan(cdb('89000000000000000000000000020000'), 2048), [Buffer.alloc(1024, 0x41), Buffer.alloc(1024, 0x42)]);
  assert.equal(ok.status, 0);
  assert.equal((await device.read(0, 1024)).every((b) => b === 0x42), true);
  const wrong = Buffer.alloc(1024, 0x42);
  wrong[700] = 0;
  const bad = await exec(a.plan(cdb('89000000000000000000000000020000'), 2048), [wrong, Buffer.alloc(1024, 0x43)]);
  assert.equal(bad.status, 2);
  assert.deepEqual(decodeSense(bad.sense!), { key: 0x0e, asc: 0x1d, ascq: 0, information: 700n });
  assert.equal((await device.read(0, 1024)).every((b) => b === 0x42), true, 'nothing written on miscompare');
});

test('VERIFY BYTCHK=1 and 3, WRITE SAME fills the range, ORWRITE ORs', async (t) => {
  const { device, a } = await unitPair(t);
  const same = await exec(a.plan(cdb('41000000000400000800')), [Buffer.alloc(512, 0x5a)]);
  assert.equal(same.status, 0);
  assert.equal((await device.read(4 * 512, 8 * 512)).every((b) => b === 0x5a), true);
  assert.equal((await exec(a.plan(cdb('2f060000000400000800')), [Buffer.alloc(512, 0x5a)])).status, 0, 'BYTCHK 3: one block against eight');
  const miss = await exec(a.plan(cdb('2f020000000300000200')), [Buffer.alloc(1024, 0)]);
  assert.deepEqual(decodeSense(miss.sense!), { key: 0x0e, asc: 0x1d, ascq: 0, information: 512n }, 'block 3 matches zeros, block 4 does not');
  assert.equal((await exec(a.plan(cdb('8b000000000000000004000000010000')), [Buffer.alloc(512, 0x25)])).status, 0);
  assert.equal((await device.read(4 * 512, 512)).every((b) => b === (0x5a | 0x25)), true);
  const wsUnmap = await exec(a.plan(cdb('41080000000400000800')), [Buffer.alloc(512)]);
  assert.equal(wsUnmap.status, 0, 'UNMAP bit with a zero block: the range is unmapped (logical-unit-thin.test.ts)');
  assert.equal((await device.read(4 * 512, 8 * 512)).every((b) => b === 0), true);
});

test('SPC-2 RESERVE: the other nexus gets RESERVATION CONFLICT until release or session end', async (t) => {
  const { a, b } = await unitPair(t);
  assert.equal((await exec(a.plan(cdb('16')))).status, 0);
  assert.equal((await exec(b.plan(cdb('28000000000000000100')))).status, 0x18);
  assert.equal((await exec(b.plan(cdb('12000000600000')))).status, 0, 'INQUIRY still allowed');
  a.release();
  assert.equal((await exec(b.plan(cdb('28000000000000000100')))).status, 0);
});

test('MODE SELECT sets D_SENSE; sense then comes in descriptor format', async (t) => {
  const { a, b } = await unitPair(t);
  const control = Buffer.from('000000000a0a04100000000000000000', 'hex');
  assert.equal((await exec(a.plan(cdb('1510000010')), [control])).status, 0);
  const oob = await exec(b.plan(cdb('28000fffffff00000100')));
  assert.equal(oob.sense![0], 0x72, 'descriptor format for every nexus');
  const wce = Buffer.from('0000000008120000000000000000000000000000000000', 'hex');
  const refused = await exec(a.plan(cdb('1510000018')), [wce]);
  assert.equal(refused.sense![2], 0x26, 'a byte outside the changeable mask: INVALID FIELD IN PARAMETER LIST');
});

test('REPORT SUPPORTED OPERATION CODES: all, one, one with service action, timeouts', async (t) => {
  const { a } = await unitPair(t);
  const all = (await exec(a.plan(cdb('a30c0000000000001000')))).data!;
  assert.equal(all.readUInt32BE(0), all.length - 4);
  assert.ok(all.length > 4 + 8 * 40);
  const read10 = (await exec(a.plan(cdb('a30c8128000000000100')))).data!;
  assert.deepEqual([read10[1], read10.readUInt16BE(2), read10[4], read10[5]], [0x83, 10, 0x28, 0xf8]);
  assert.equal(read10.length, 4 + 10 + 12, 'usage data then a timeouts descriptor');
  const prin = await exec(a.plan(cdb('a30c015e000000000100')));
  assert.equal(prin.status, 2, 'option 1 for an opcode with service actions');
  const unmap = (await exec(a.plan(cdb('a30c0142000000000100')))).data!;
  assert.equal(unmap[1]! & 7, 3, 'UNMAP supported: the file volume is thin provisioned');
});
