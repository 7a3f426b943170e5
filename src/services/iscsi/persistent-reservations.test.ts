import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDisklessError } from '../../errors/index.js';
import { PersistentReservations, PrinAction, ProutAction, PrType } from './persistent-reservations.js';

const A = { id: 'iqn.2026-11.io.test:a,i,0x000000000001', relativeTargetPort: 1 };
const B = { id: 'iqn.2026-11.io.test:b,i,0x000000000002', relativeTargetPort: 1 };
function params(key: bigint, sark: bigint, flags = 0): Buffer {
  const p = Buffer.alloc(24);
  p.writeBigUInt64BE(key, 0);
  p.writeBigUInt64BE(sark, 8);
  p[20] = flags;
  return p;
}

test('register, reserve, access rules, release, preempt, clear; PRgeneration counts', async () => {
  const pr = new PersistentReservations(null);
  assert.equal(await pr.out(A, ProutAction.register, 0, 0, params(0n, 0xaan)), 'good');
  assert.equal(await pr.out(B, ProutAction.register, 0, 0, params(1n, 0xbbn)), 'conflict', 'unregistered nexus with a non-zero key');
  assert.equal(await pr.out(B, ProutAction.registerAndIgnore, 0, 0, params(1n, 0xbbn)), 'good');
  const keys = pr.in(PrinAction.readKeys);
  assert.deepEqual([keys.readUInt32BE(0), keys.readUInt32BE(4), keys.readBigUInt64BE(8), keys.readBigUInt64BE(16)], [2, 16, 0xaan, 0xbbn]);
  assert.equal(await pr.out(A, ProutAction.reserve, 0, PrType.writeExclusive, params(0xaan, 0n)), 'good');
  assert.equal(pr.allows(B.id, 'read'), true);
  assert.equal(pr.allows(B.id, 'write'), false);
  assert.equal(pr.allows(A.id, 'write'), true);
  assert.equal(await pr.out(B, ProutAction.reserve, 0, PrType.writeExclusive, params(0xbbn, 0n)), 'conflict');
  assert.throws(() => pr.in(9), (e: unknown) => isDisklessError(e, 'SCSI_CHECK_CONDITION'));
  const r = pr.in(PrinAction.readReservation);
  assert.deepEqual([r.readUInt32BE(4), r.readBigUInt64BE(8), r[21]], [16, 0xaan, PrType.writeExclusive]);
  await assert.rejects(pr.out(A, ProutAction.release, 0, PrType.exclusiveAccess, params(0xaan, 0n)), (e: unknown) => isDisklessError(e, 'SCSI_CHECK_CONDITION'), 'release with the wrong type');
  assert.equal(await pr.out(B, ProutAction.preempt, 0, PrType.exclusiveAccess, params(0xbbn, 0xaan)), 'good');
  assert.equal(pr.allows(A.id, 'read'), false, 'A was preempted: unregistered, exclusive access');
  assert.equal(pr.in(PrinAction.readKeys).readUInt32BE(4), 8);
  const full = pr.in(PrinAction.readFullStatus);
  assert.equal(full.readBigUInt64BE(8), 0xbbn);
  assert.equal(full[8 + 12], 1, 'R_HOLDER');
  assert.equal(full.subarray(8 + 28, 8 + 28 + B.id.length).toString(), B.id, 'iSCSI TransportID');
  assert.equal(await pr.out(B, ProutAction.clear, 0, 0, params(0xbbn, 0n)), 'good');
  assert.equal(pr.reserved, false);
  assert.equal(pr.in(PrinAction.readKeys).readUInt32BE(0), 4, 'generation: two registrations, the preempt, the clear');
});

test('bad parameter lists: length, SPEC_I_PT, REGISTER AND MOVE, scope', async () => {
  const pr = new PersistentReservations(null);
  const cc = (e: unknown) => isDisklessError(e, 'SCSI_CHECK_CONDITION');
  await assert.rejects(pr.out(A, ProutAction.register, 0, 0, Buffer.alloc(20)), cc);
  await assert.rejects(pr.out(A, ProutAction.register, 0, 0, params(0n, 1n, 0x08)), cc);
  await assert.rejects(pr.out(A, ProutAction.registerAndMove, 0, 0, params(0n, 1n)), cc);
  await pr.out(A, ProutAction.register, 0, 0, params(0n, 1n));
  await assert.rejects(pr.out(A, ProutAction.reserve, 1, PrType.writeExclusive, params(1n, 0n)), cc);
  await assert.rejects(pr.out(A, ProutAction.reserve, 0, 2, params(1n, 0n)), cc);
});

test('state survives a restart through the JSON file; a corrupt file is refused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dl-pr-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'disk.img.reservations.json');
  const pr = await PersistentReservations.load(file);
  await pr.out(A, ProutAction.register, 0, 0, params(0n, 0x1234n));
  await pr.out(A, ProutAction.reserve, 0, PrType.exclusiveAccessRegistrantsOnly, params(0x1234n, 0n));
  const text = JSON.parse(await readFile(file, 'utf8'));
  assert.equal(text.format, 'diskless-persistent-reservations');
  assert.deepEqual(text.registrations, [{ nexus: A.id, key: '0000000000001234', relativeTargetPort: 1 }]);
  const again = await PersistentReservations.load(file);
  assert.equal(again.allows(B.id, 'read'), false);
  assert.equal(again.allows(A.id, 'write'), true);
  assert.deepEqual(again.in(PrinAction.readReservation), pr.in(PrinAction.readReservation));
  await writeFile(file, '{"format":"other"}');
  await assert.rejects(PersistentReservations.load(file), (e: unknown) => isDisklessError(e, 'ISCSI_RESERVATIONS_FILE'));
});
