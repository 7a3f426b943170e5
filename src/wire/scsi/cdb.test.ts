import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDisklessError } from '../../errors/index.js';
import { decodeCdb, cdbLength } from './cdb.js';
import { Asc, SenseKey } from './scsi-constants.js';
import { decodeSense, encodeDescriptorSense, encodeFixedSense, senseOf } from './sense.js';

const cdb = (hex: string) => Buffer.from(hex.padEnd(32, '0'), 'hex');
const invalidField = (byte: number) => (e: unknown) => {
  if (!isDisklessError(e, 'SCSI_CHECK_CONDITION')) return false;
  const s = senseOf(e);
  return s.key === SenseKey.illegalRequest && s.asc === Asc.invalidFieldInCdb.asc && s.field?.byte === byte;
};

test('CDBs captured from iPXE, libiscsi and QEMU decode to their fields', () => {
  assert.deepEqual(decodeCdb(cdb('00')), { op: 'testUnitReady' });
  assert.deepEqual(decodeCdb(cdb('25')), { op: 'readCapacity10' });
  assert.deepEqual(decodeCdb(cdb('28000000004000000400')), { op: 'read', lba: 0x40n, blocks: 4, fua: false });
  assert.deepEqual(decodeCdb(cdb('2a080000000800002800')), { op: 'write', lba: 8n, blocks: 0x28, fua: true });
  assert.deepEqual(decodeCdb(cdb('12000000400000')), { op: 'inquiry', evpd: false, pageCode: 0, allocationLength: 64 });
  assert.deepEqual(decodeCdb(cdb('12018300400000')), { op: 'inquiry', evpd: true, pageCode: 0x83, allocationLength: 64 });
  assert.deepEqual(decodeCdb(cdb('1a083f00ff00')), { op: 'modeSense', ten: false, disableBlockDescriptors: true, longLba: false, pageControl: 0, pageCode: 0x3f, subpageCode: 0, allocationLength: 255 });
  assert.deepEqual(decodeCdb(cdb('9e100000000000000000000000200000')), { op: 'readCapacity16', allocationLength: 32 });
  assert.deepEqual(decodeCdb(cdb('35000000000000000000')), { op: 'synchronizeCache', lba: 0n, blocks: 0, immediate: false });
  assert.deepEqual(decodeCdb(cdb('a0000000000000001000')), { op: 'reportLuns', selectReport: 0, allocationLength: 4096 });
});

test('READ/WRITE 6, 12, 16 and SYNCHRONIZE CACHE 16 fields', () => {
  assert.deepEqual(decodeCdb(cdb('0801020300')), { op: 'read', lba: 0x10203n, blocks: 256, fua: false }, 'READ(6) length 0 means 256');
  assert.deepEqual(decodeCdb(cdb('0a00000108')), { op: 'write', lba: 1n, blocks: 8, fua: false });
  assert.deepEqual(decodeCdb(cdb('a80000000010000000200000')), { op: 'read', lba: 16n, blocks: 32, fua: false });
  assert.deepEqual(decodeCdb(cdb('8a08ffffffffffffffff0000000100')), { op: 'write', lba: 0xffffffffffffffffn, blocks: 1, fua: true });
  assert.deepEqual(decodeCdb(cdb('9102000000000000000100000002')), { op: 'synchronizeCache', lba: 1n, blocks: 2, immediate: true });
  assert.deepEqual(decodeCdb(cdb('5a18080000000000ff00')), { op: 'modeSense', ten: true, disableBlockDescriptors: true, longLba: true, pageControl: 0, pageCode: 8, subpageCode: 0, allocationLength: 255 });
});

test('fields the target cannot honour are INVALID FIELD IN CDB with a field pointer', () => {
  assert.throws(() => decodeCdb(cdb('28200000000000000100')), invalidField(1), 'RDPROTECT');
  assert.throws(() => decodeCdb(cdb('2a400000000000000100')), invalidField(1), 'WRPROTECT');
  assert.throws(() => decodeCdb(cdb('12008000400000')), invalidField(2), 'page code without EVPD');
  assert.throws(() => decodeCdb(cdb('12020000400000')), invalidField(1), 'CMDDT');
  assert.throws(() => decodeCdb(cdb('a0000000000000000008')), invalidField(6), 'REPORT LUNS allocation < 16');
  assert.throws(() => decodeCdb(cdb('00000000000400')), invalidField(5), 'NACA');
  assert.throws(() => decodeCdb(cdb('25000000000100000000')), invalidField(2), 'LBA without PMI');
});

test('unimplemented opcodes and service actions decode as unsupported', () => {
  for (const op of ['9c', '83', '37', 'c0', '7f']) assert.equal(decodeCdb(cdb(op)).op, 'unsupported', op);
  assert.deepEqual(decodeCdb(cdb('9e11')), { op: 'unsupported', opcode: 0x9e, serviceAction: 0x11 });
  assert.deepEqual(decodeCdb(cdb('a305')), { op: 'unsupported', opcode: 0xa3, serviceAction: 0x05 });
  assert.equal(decodeCdb(Buffer.alloc(0)).op, 'unsupported');
  assert.equal(decodeCdb(Buffer.from([0x88, 0, 0])).op, 'unsupported', 'shorter than the command');
  assert.deepEqual([cdbLength(0x08), cdbLength(0x28), cdbLength(0x88), cdbLength(0xa8), cdbLength(0x7f)], [6, 10, 16, 12, undefined]);
});

test('sense data: fixed and descriptor formats decode back', () => {
  const s = { key: SenseKey.illegalRequest, ...Asc.lbaOutOfRange, information: 1234n, field: { inCdb: true, byte: 2 } };
  const fixed = encodeFixedSense(s);
  assert.equal(fixed.length, 18);
  assert.equal(fixed[0], 0xf0, 'current error, VALID');
  assert.deepEqual([fixed[2], fixed[7], fixed[12], fixed[13], fixed[15], fixed.readUInt16BE(16)], [0x05, 10, 0x21, 0x00, 0xc0, 2]);
  assert.deepEqual(decodeSense(fixed), { key: 5, asc: 0x21, ascq: 0, information: 1234n });
  const desc = encodeDescriptorSense(s);
  assert.equal(desc[0], 0x72);
  assert.equal(desc[7], desc.length - 8);
  assert.deepEqual(decodeSense(desc), { key: 5, asc: 0x21, ascq: 0 });
  assert.equal(decodeSense(Buffer.from([0x00, 0, 0, 0, 0, 0, 0, 0])), null);
});

test('SBC-3 commands of issue 3 decode to their fields', () => {
  assert.deepEqual(decodeCdb(cdb('2f020000001000000800')), { op: 'verify', lba: 0x10n, blocks: 8, byteCheck: 1 });
  assert.deepEqual(decodeCdb(cdb('af0600000010000000080000')), { op: 'verify', lba: 0x10n, blocks: 8, byteCheck: 3 });
  assert.deepEqual(decodeCdb(cdb('8f0000000000000000200000000100')), { op: 'verify', lba: 0x20n, blocks: 1, byteCheck: 0 });
  assert.throws(() => decodeCdb(cdb('2f04')), invalidField(1), 'BYTCHK 10b is reserved');
  assert.throws(() => decodeCdb(cdb('2f20')), invalidField(1), 'VRPROTECT');
  assert.deepEqual(decodeCdb(cdb('2e020000000100000100')), { op: 'writeAndVerify', lba: 1n, blocks: 1, byteCheck: true });
  assert.deepEqual(decodeCdb(cdb('41080000000200000400')), { op: 'writeSame', lba: 2n, blocks: 4, unmap: true, anchor: false, noDataOut: false });
  assert.deepEqual(decodeCdb(cdb('9301000000000000000300000005')), { op: 'writeSame', lba: 3n, blocks: 5, unmap: false, anchor: false, noDataOut: true });
  assert.throws(() => decodeCdb(cdb('4101')), invalidField(1), 'bit 0 of WRITE SAME (10) is reserved');
  assert.deepEqual(decodeCdb(cdb('89080000000000000007000000020000')), { op: 'compareAndWrite', lba: 7n, blocks: 2, fua: true });
  assert.deepEqual(decodeCdb(cdb('8b000000000000000007000000020000')), { op: 'orWrite', lba: 7n, blocks: 2, fua: false });
  assert.deepEqual(decodeCdb(cdb('34020000000900000100')), { op: 'prefetch', lba: 9n, blocks: 1, immediate: true });
  assert.deepEqual(decodeCdb(cdb('9e120000000000000040000000200000')), { op: 'getLbaStatus', lba: 0x40n, allocationLength: 32 });
  assert.deepEqual(decodeCdb(cdb('420000000000000018')), { op: 'unmap', anchor: false, parameterListLength: 24 });
  assert.deepEqual(decodeCdb(cdb('a30c82280000000002000000')), { op: 'reportSupportedOpcodes', options: 2, opcode: 0x28, serviceAction: 0, timeouts: true, allocationLength: 512 });
  assert.throws(() => decodeCdb(cdb('a30c07')), invalidField(2), 'reporting options above 3');
  assert.deepEqual(decodeCdb(cdb('1e00000001')), { op: 'preventAllow', prevent: 1 });
  assert.deepEqual(decodeCdb(cdb('1b01000006')), { op: 'startStopUnit', immediate: true, powerCondition: 0, noFlush: true, loadEject: true, start: false });
  assert.deepEqual(decodeCdb(cdb('16')), { op: 'reserve', ten: false });
  assert.deepEqual(decodeCdb(cdb('57')), { op: 'release', ten: true });
  assert.throws(() => decodeCdb(cdb('5610')), invalidField(1), 'third-party RESERVE (10)');
  assert.deepEqual(decodeCdb(cdb('5e030000000000100000')), { op: 'persistentReserveIn', serviceAction: 3, allocationLength: 0x1000 });
  assert.deepEqual(decodeCdb(cdb('5f01030000000000180000')), { op: 'persistentReserveOut', serviceAction: 1, scope: 0, type: 3, parameterListLength: 24 });
  assert.deepEqual(decodeCdb(cdb('1511000018')), { op: 'modeSelect', ten: false, pageFormat: true, savePages: true, parameterListLength: 24 });
  assert.deepEqual(decodeCdb(cdb('55100000000000001400')), { op: 'modeSelect', ten: true, pageFormat: true, savePages: false, parameterListLength: 20 });
});
