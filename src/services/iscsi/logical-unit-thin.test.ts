/**
 * Thin provisioning on a real file volume (holes punched in a sparse file): READ CAPACITY 16
 * LBPME/LBPRZ, VPD B0h/B2h, UNMAP with its parameter-list checks, WRITE SAME with UNMAP, GET
 * LBA STATUS, and the fully provisioned answers when the device cannot unmap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStorageDriver } from '../../store/file/file-storage-driver.js';
import { FileBlockDevice } from '../../store/file/file-block-device.js';
import { decodeSense } from '../../wire/scsi/sense.js';
import { decodeLbaStatusData, encodeUnmapList, type UnmapRange } from '../../wire/scsi/thin-provisioning.js';
import { LogicalUnit, unitIdentity, type CommandPlan, type ScsiResult } from './logical-unit.js';

const cdb = (hex: string) => Buffer.from(hex.padEnd(32, '0'), 'hex');
const SIZE = 4 * 1024 * 1024;
const BLOCKS = SIZE / 512;
const id = unitIdentity('iqn.2026-11.io.test:thin', 1);

async function exec(plan: CommandPlan, data: Buffer[] = []): Promise<ScsiResult> {
  if (plan.kind === 'fail') return plan.result;
  if (plan.kind === 'dataOut') return plan.run(data);
  return plan.run();
}

/** A thin unit on a fresh file volume, with the driver (for `allocated`) and the device. */
async function thinUnit(t: { after(fn: () => Promise<void>): void }, readOnly = false) {
  const dir = await mkdtemp(join(tmpdir(), 'dl-thin-'));
  const store = new FileStorageDriver({ dataDir: dir });
  await store.create('v', { size: SIZE });
  const device = await store.open('v');
  t.after(async () => {
    await device.close();
    await rm(dir, { recursive: true, force: true });
  });
  assert.equal(device.capabilities.unmap, true, 'this machine punches holes in its temporary directory');
  return { store, device, unit: new LogicalUnit(device, readOnly, id, { initiator: 'iqn.i:thin', isid: 1 }) };
}

/** A unit on a device that cannot unmap (no hole-punching functions): fully provisioned. */
async function fullUnit(t: { after(fn: () => Promise<void>): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'dl-full-'));
  const fh = await open(join(dir, 'v.img'), 'w+');
  await fh.truncate(SIZE);
  const device = new FileBlockDevice(fh, SIZE, 512, false, 'v', { allocation: null });
  t.after(async () => {
    await device.close();
    await rm(dir, { recursive: true, force: true });
  });
  return new LogicalUnit(device, false, id);
}

function unmapCdb(length: number, anchor = false): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x42;
  c[1] = anchor ? 1 : 0;
  c.writeUInt16BE(length, 7);
  return c;
}

async function unmap(unit: LogicalUnit, ranges: UnmapRange[]): Promise<ScsiResult> {
  const list = encodeUnmapList(ranges);
  return exec(unit.plan(unmapCdb(list.length), list.length), [list]);
}

async function lbaStatus(unit: LogicalUnit, lba: number, allocationLength = 8 + 16 * 16) {
  const c = Buffer.alloc(16);
  c[0] = 0x9e;
  c[1] = 0x12;
  c.writeBigUInt64BE(BigInt(lba), 2);
  c.writeUInt32BE(allocationLength, 10);
  const r = await exec(unit.plan(c, allocationLength));
  assert.equal(r.status, 0, `GET LBA STATUS at ${lba}: ${r.sense?.toString('hex')}`);
  return decodeLbaStatusData(r.data!).descriptors.map((d) => [Number(d.lba), d.blocks, d.status === 0 ? 'mapped' : 'deallocated']);
}

/** Fixed-format sense with its field pointer (SKSV, C/D, BPV, bit, byte: bytes 15-17). */
const senseOf = (r: ScsiResult) => {
  assert.equal(r.status, 2, 'CHECK CONDITION');
  const s = r.sense!;
  const sks = s[15]!;
  const field = sks & 0x80 ? { inCdb: (sks & 0x40) !== 0, byte: s.readUInt16BE(16), ...(sks & 0x08 ? { bit: sks & 7 } : {}) } : undefined;
  return { ...decodeSense(s)!, field };
};

test('thin unit: READ CAPACITY 16 says LBPME=1 LBPRZ=1; VPD 00h lists B2h; B2h and B0h describe what UNMAP accepts', async (t) => {
  const { unit } = await thinUnit(t);
  const rc16 = (await exec(unit.plan(cdb('9e100000000000000000000000200000')))).data!;
  assert.equal(rc16[14]! & 0xc0, 0xc0, 'LBPME and LBPRZ');
  const pages = (await exec(unit.plan(cdb('120100ff0000')))).data!;
  assert.deepEqual([...pages.subarray(4)], [0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2]);
  const b2 = (await exec(unit.plan(cdb('1201b2004000')))).data!;
  assert.deepEqual([...b2], [0x00, 0xb2, 0x00, 0x04, 0x00, 0xe4, 0x02, 0x00], 'LBPU, LBPWS, LBPWS10, LBPRZ; no ANC_SUP; provisioning type thin');
  const b0 = (await exec(unit.plan(cdb('1201b0004000')))).data!;
  assert.equal(b0.readUInt16BE(2), 0x3c);
  assert.equal(b0.readUInt32BE(20), (512 * 1024 * 1024) / 512, 'MAXIMUM UNMAP LBA COUNT');
  assert.equal(b0.readUInt32BE(24), 1024, 'MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT');
  assert.equal(b0.readUInt32BE(28), 8, 'OPTIMAL UNMAP GRANULARITY: 4 KiB');
  assert.equal(b0.readUInt32BE(32), 0x80000000, 'UGAVALID, alignment 0');
  assert.equal(b0.readBigUInt64BE(36), BigInt((16 * 1024 * 1024) / 512), 'MAXIMUM WRITE SAME LENGTH');
  assert.equal(b0.readUInt16BE(6), 8, 'OPTIMAL TRANSFER LENGTH GRANULARITY: 4 KiB');
  assert.equal(rc16[13], 0, 'physical block = logical block: GET LBA STATUS descriptors start at any LBA');
  const rsoc = (await exec(unit.plan(cdb('a30c029e001200000100')))).data!;
  assert.equal(rsoc[1]! & 7, 3, 'GET LBA STATUS supported');
});

test('fully provisioned unit: LBPME=0, no VPD B2h, zero unmap limits; UNMAP and GET LBA STATUS are invalid opcodes, the WRITE SAME UNMAP bit an invalid field', async (t) => {
  const unit = await fullUnit(t);
  const rc16 = (await exec(unit.plan(cdb('9e100000000000000000000000200000')))).data!;
  assert.equal(rc16[14], 0);
  const pages = (await exec(unit.plan(cdb('120100ff0000')))).data!;
  assert.deepEqual([...pages.subarray(4)], [0x00, 0x80, 0x83, 0xb0, 0xb1]);
  assert.equal(senseOf(await exec(unit.plan(cdb('1201b2004000')))).asc, 0x24);
  const b0 = (await exec(unit.plan(cdb('1201b0004000')))).data!;
  assert.deepEqual([b0.readUInt32BE(20), b0.readUInt32BE(24), b0.readUInt32BE(28)], [0, 0, 0]);
  assert.equal(senseOf(await unmap(unit, [{ lba: 0n, blocks: 1 }])).asc, 0x20);
  assert.equal(senseOf(await exec(unit.plan(cdb('9e120000000000000000000000180000')))).asc, 0x20);
  const ws = senseOf(await exec(unit.plan(cdb('41080000000000000100')), [Buffer.alloc(512)]));
  assert.deepEqual([ws.asc, ws.field], [0x24, { inCdb: true, byte: 1, bit: 3 }]);
});

test('UNMAP frees the blocks (allocated bytes drop), they read as zeros, GET LBA STATUS reports them deallocated', async (t) => {
  const { store, device, unit } = await thinUnit(t);
  await device.write(0, Buffer.alloc(SIZE, 0x61));
  await device.flush();
  const before = (await store.info('v')).used;
  const r = await unmap(unit, [{ lba: 8n, blocks: 8 }, { lba: 1024n, blocks: 2048 }, { lba: 100n, blocks: 0 }]);
  assert.equal(r.status, 0, r.sense?.toString('hex'));
  const after = (await store.info('v')).used;
  assert.ok(before - after >= (8 + 2048) * 512, `freed ${before - after} bytes`);
  assert.equal((await device.read(8 * 512, 8 * 512)).every((b) => b === 0), true);
  assert.equal((await device.read(1024 * 512, 2048 * 512)).every((b) => b === 0), true);
  assert.equal((await device.read(0, 8 * 512)).every((b) => b === 0x61), true, 'block 0-7 kept');
  assert.deepEqual(await lbaStatus(unit, 0), [
    [0, 8, 'mapped'],
    [8, 8, 'deallocated'],
    [16, 1008, 'mapped'],
    [1024, 2048, 'deallocated'],
    [3072, BLOCKS - 3072, 'mapped'],
  ]);
  assert.deepEqual(await lbaStatus(unit, 9, 24), [[9, 7, 'deallocated']], 'first descriptor starts at the requested LBA; one fits in 24 bytes');
  assert.deepEqual(await lbaStatus(unit, 20, 8 + 32), [[20, 1004, 'mapped'], [1024, 2048, 'deallocated']]);
});

test('UNMAP parameter list checks: length error, LBA out of range (nothing unmapped), too many descriptors or blocks, ANCHOR, empty list, read-only', async (t) => {
  const { device, unit } = await thinUnit(t);
  await device.write(0, Buffer.alloc(64 * 512, 0x62));
  const short = await exec(unit.plan(unmapCdb(4), 4), [Buffer.alloc(4)]);
  assert.deepEqual([senseOf(short).key, senseOf(short).asc], [5, 0x1a], 'PARAMETER LIST LENGTH ERROR');
  const oob = senseOf(await unmap(unit, [{ lba: 0n, blocks: 8 }, { lba: BigInt(BLOCKS - 1), blocks: 2 }]));
  assert.deepEqual([oob.asc, oob.information], [0x21, BigInt(BLOCKS - 1)]);
  assert.equal((await device.read(0, 8 * 512)).every((b) => b === 0x62), true, 'a refused list unmaps nothing');
  const many = Array.from({ length: 1025 }, (_, i) => ({ lba: BigInt(i), blocks: 1 }));
  const tooMany = senseOf(await unmap(unit, many));
  assert.deepEqual([tooMany.asc, tooMany.field], [0x26, { inCdb: false, byte: 2 }], 'INVALID FIELD IN PARAMETER LIST at the descriptor data length');
  const bigDev = (512 * 1024 * 1024) / 512;
  const tooBig = senseOf(await unmap(unit, [{ lba: 0n, blocks: 1 }, { lba: 1n, blocks: bigDev }]));
  assert.equal(tooBig.asc, 0x21, 'beyond the 4 MiB unit first');
  const anchor = senseOf(await exec(unit.plan(unmapCdb(24, true), 24), [encodeUnmapList([{ lba: 0n, blocks: 1 }])]));
  assert.deepEqual([anchor.asc, anchor.field], [0x24, { inCdb: true, byte: 1, bit: 0 }]);
  assert.equal((await exec(unit.plan(unmapCdb(0), 0))).status, 0, 'PARAMETER LIST LENGTH 0: nothing to do');
  const partial = Buffer.concat([encodeUnmapList([{ lba: 0n, blocks: 1 }]), Buffer.alloc(7)]);
  partial.writeUInt16BE(16 + 16, 2); // announces two descriptors, holds one and a half
  assert.equal((await exec(unit.plan(unmapCdb(partial.length), partial.length), [partial])).status, 0, 'a truncated last descriptor is ignored');
  assert.equal((await device.read(0, 512)).every((b) => b === 0), true);
  assert.equal((await device.read(512, 512)).every((b) => b === 0x62), true);
  const { unit: ro } = await thinUnit(t, true);
  assert.deepEqual([senseOf(await unmap(ro, [{ lba: 0n, blocks: 1 }])).key, senseOf(await unmap(ro, [{ lba: 0n, blocks: 1 }])).asc], [7, 0x27]);
});

test('MAXIMUM UNMAP LBA COUNT is enforced over the sum of the descriptors; MAXIMUM WRITE SAME LENGTH over one WRITE SAME', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dl-thin-big-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = new FileStorageDriver({ dataDir: dir });
  await store.create('big', { size: 1024 * 1024 * 1024 + 512 * 16 }); // sparse: nothing allocated
  const device = await store.open('big');
  t.after(() => device.close());
  const unit = new LogicalUnit(device, false, id);
  const max = (512 * 1024 * 1024) / 512;
  const over = senseOf(await unmap(unit, [{ lba: 0n, blocks: max }, { lba: BigInt(max), blocks: 1 }]));
  assert.deepEqual([over.asc, over.field], [0x26, { inCdb: false, byte: 8 + 16 + 8 }], 'the block count that crosses the limit');
  assert.equal((await unmap(unit, [{ lba: 0n, blocks: max }])).status, 0, 'exactly the limit is fine');
  const tooLong = senseOf(await exec(unit.plan(cdb('93080000000000000000000100000000')), [Buffer.alloc(512)]));
  assert.deepEqual([tooLong.asc, tooLong.field], [0x24, { inCdb: true, byte: 10 }], 'WRITE SAME UNMAP of 65536 blocks exceeds MAXIMUM WRITE SAME LENGTH (32768)');
  assert.equal((await exec(unit.plan(cdb('93080000000000000000000080000000')), [Buffer.alloc(512)])).status, 0, '32768 blocks are fine');
});

test('WRITE SAME with UNMAP: a zero block (or NDOB) deallocates, other data is written; ANCHOR is refused', async (t) => {
  const { device, unit } = await thinUnit(t);
  await device.write(0, Buffer.alloc(256 * 512, 0x63));
  assert.equal((await exec(unit.plan(cdb('41080000001000001000')), [Buffer.alloc(512)])).status, 0, 'WRITE SAME 10 UNMAP, 16 blocks at 16');
  assert.equal((await exec(unit.plan(cdb('93090000000000000040000000400000')))).status, 0, 'WRITE SAME 16 UNMAP NDOB, 64 blocks at 64');
  const pattern = Buffer.alloc(512, 0x7e);
  assert.equal((await exec(unit.plan(cdb('930800000000000000c0000000080000')), [pattern])).status, 0, 'UNMAP bit with non-zero data: written');
  assert.deepEqual((await lbaStatus(unit, 0)).slice(0, 5), [
    [0, 16, 'mapped'],
    [16, 16, 'deallocated'],
    [32, 32, 'mapped'],
    [64, 64, 'deallocated'],
    [128, 128, 'mapped'],
  ]);
  assert.equal((await device.read(16 * 512, 16 * 512)).every((b) => b === 0), true);
  assert.equal((await device.read(192 * 512, 8 * 512)).every((b) => b === 0x7e), true);
  const anchored = senseOf(await exec(unit.plan(cdb('41180000000000000100')), [Buffer.alloc(512)]));
  assert.deepEqual([anchored.asc, anchored.field], [0x24, { inCdb: true, byte: 1, bit: 4 }]);
  const sized = (edtl: number) => exec(unit.plan(cdb('41080000000000000100'), edtl), [Buffer.alloc(edtl)]);
  assert.equal(senseOf(await sized(256)).asc, 0x24, 'Data-Out smaller than a block');
  assert.equal(senseOf(await sized(1024)).asc, 0x24, 'Data-Out larger than a block');
  assert.equal((await sized(512)).status, 0);
  assert.equal(senseOf(await exec(unit.plan(cdb('93090000000000000000000000010000'), 512))).asc, 0x24, 'NDOB with Data-Out');
  const beyond = senseOf(await exec(unit.plan(cdb(`9308${(BLOCKS - 4).toString(16).padStart(16, '0')}00000008`)), [Buffer.alloc(512)]));
  assert.equal(beyond.asc, 0x21);
});

test('GET LBA STATUS: an LBA past the end is LBA OUT OF RANGE; a short allocation length truncates; the last LBA works', async (t) => {
  const { unit } = await thinUnit(t);
  const c = Buffer.from(`9e12${BLOCKS.toString(16).padStart(16, '0')}00000018`.padEnd(32, '0'), 'hex');
  const s = senseOf(await exec(unit.plan(c)));
  assert.deepEqual([s.asc, s.information], [0x21, BigInt(BLOCKS)]);
  assert.deepEqual(await lbaStatus(unit, BLOCKS - 1, 24), [[BLOCKS - 1, 1, 'deallocated']]);
  const c8 = Buffer.from('9e12000000000000000000000008'.padEnd(32, '0'), 'hex');
  const head = (await exec(unit.plan(c8))).data!;
  assert.equal(head.length, 8);
  assert.equal(head.readUInt32BE(0), 20, 'PARAMETER DATA LENGTH still says what one descriptor would take');
  const c0 = Buffer.from('9e12000000000000000000000000'.padEnd(32, '0'), 'hex');
  assert.equal((await exec(unit.plan(c0))).data!.length, 0);
});
