import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDisklessError } from '../../errors/index.js';
import { IscsiOpcode } from './iscsi-constants.js';
import { parsePdu, type IscsiPdu } from './iscsi-pdu.js';
import { encodeBhs } from './bhs-encoder.js';
import { decodePdu, encodePduBuffer, encodePdu, PduReader, paddingLength } from './pdu-framing.js';
import { Crc32c, writeDigest } from '../checksum/crc32c.js';

const code = (c: string) => (e: unknown) => isDisklessError(e) && e.code === c;
const data = Buffer.from('hello iscsi');
const lun = 0x0001000000000000n;

/** One PDU of every opcode with every field set to a distinct value. */
export const samples: IscsiPdu[] = [
  { opcode: IscsiOpcode.nopOut, immediate: true, lun, itt: 1, ttt: 0xffffffff, cmdSN: 2, expStatSN: 3, data },
  { opcode: IscsiOpcode.scsiCommand, immediate: false, final: true, read: true, write: false, attribute: 1, lun, itt: 4, expectedDataTransferLength: 512, cmdSN: 5, expStatSN: 6, cdb: Buffer.from('28000000000000000100000000000000', 'hex'), ahs: Buffer.alloc(0), data: Buffer.alloc(0) },
  { opcode: IscsiOpcode.scsiCommand, immediate: false, final: false, read: false, write: true, attribute: 2, lun, itt: 4, expectedDataTransferLength: 512, cmdSN: 5, expStatSN: 6, cdb: Buffer.alloc(16, 7), ahs: Buffer.from('0005010000000000', 'hex'), data },
  { opcode: IscsiOpcode.scsiResponse, bidiOverflow: true, bidiUnderflow: false, overflow: false, underflow: true, response: 0, status: 2, itt: 7, snackTag: 8, statSN: 9, expCmdSN: 10, maxCmdSN: 11, expDataSN: 12, bidiResidualCount: 13, residualCount: 14, data },
  { opcode: IscsiOpcode.taskManagementRequest, immediate: true, function: 5, lun, itt: 15, referencedTaskTag: 16, cmdSN: 17, expStatSN: 18, refCmdSN: 19, expDataSN: 20, data: Buffer.alloc(0) },
  { opcode: IscsiOpcode.taskManagementResponse, response: 5, itt: 21, statSN: 22, expCmdSN: 23, maxCmdSN: 24, data: Buffer.alloc(0) },
  { opcode: IscsiOpcode.loginRequest, transit: true, continue: false, csg: 1, nsg: 3, versionMax: 0, versionMin: 0, isid: 0x400001370000, tsih: 0, itt: 25, cid: 1, cmdSN: 26, expStatSN: 27, data },
  { opcode: IscsiOpcode.loginResponse, transit: false, continue: true, csg: 0, nsg: 0, versionMax: 0, versionActive: 0, isid: 0x400001370000, tsih: 9, itt: 25, statSN: 28, expCmdSN: 29, maxCmdSN: 30, statusClass: 2, statusDetail: 1, data },
  { opcode: IscsiOpcode.textRequest, immediate: true, final: true, continue: false, lun: 0n, itt: 31, ttt: 0xffffffff, cmdSN: 32, expStatSN: 33, data },
  { opcode: IscsiOpcode.textResponse, final: false, continue: true, lun: 0n, itt: 31, ttt: 34, statSN: 35, expCmdSN: 36, maxCmdSN: 37, data },
  { opcode: IscsiOpcode.dataOut, final: true, lun, itt: 38, ttt: 39, expStatSN: 40, dataSN: 41, bufferOffset: 8192, data },
  { opcode: IscsiOpcode.dataIn, final: true, acknowledge: false, overflow: true, underflow: false, statusPresent: true, status: 0, lun: 0n, itt: 42, ttt: 0xffffffff, statSN: 43, expCmdSN: 44, maxCmdSN: 45, dataSN: 46, bufferOffset: 47, residualCount: 48, data },
  { opcode: IscsiOpcode.logoutRequest, immediate: true, reason: 0, itt: 49, cid: 0, cmdSN: 50, expStatSN: 51, data: Buffer.alloc(0) },
  { opcode: IscsiOpcode.logoutResponse, response: 0, itt: 49, statSN: 52, expCmdSN: 53, maxCmdSN: 54, time2Wait: 2, time2Retain: 20, data: Buffer.alloc(0) },
  { opcode: IscsiOpcode.r2t, lun, itt: 55, ttt: 56, statSN: 57, expCmdSN: 58, maxCmdSN: 59, r2tSN: 60, bufferOffset: 61, desiredDataTransferLength: 62, data: Buffer.alloc(0) },
  { opcode: IscsiOpcode.nopIn, lun, itt: 63, ttt: 0xffffffff, statSN: 64, expCmdSN: 65, maxCmdSN: 66, data },
  { opcode: IscsiOpcode.reject, reason: 4, statSN: 67, expCmdSN: 68, maxCmdSN: 69, dataSN: 0, data: Buffer.alloc(48, 1) },
  { opcode: IscsiOpcode.asyncMessage, lun, statSN: 70, expCmdSN: 71, maxCmdSN: 72, asyncEvent: 1, asyncVCode: 0, parameter1: 73, parameter2: 74, parameter3: 75, data },
  { opcode: IscsiOpcode.snackRequest, type: 1, lun, itt: 76, ttt: 77, expStatSN: 78, begRun: 79, runLength: 80, data: Buffer.alloc(0) },
];

test('every opcode: encode → decode gives the same object, and re-encodes to the same bytes', () => {
  for (const pdu of samples) {
    const bytes = encodePduBuffer(pdu);
    assert.equal(bytes.length % 4, 0, 'padded to 4 bytes');
    const back = decodePdu(bytes);
    assert.deepEqual({ ...back }, { ...pdu }, `opcode 0x${pdu.opcode.toString(16)}`);
    assert.deepEqual(encodePduBuffer(back), bytes);
  }
});

test('with header and data digests the PDU round-trips and a flipped bit is caught', () => {
  const digests = { header: true, data: true };
  for (const pdu of samples) {
    const bytes = encodePduBuffer(pdu, digests);
    assert.deepEqual({ ...decodePdu(bytes, digests) }, { ...pdu });
    const bad = Buffer.from(bytes);
    bad[20]! ^= 1; // inside the BHS
    assert.throws(() => decodePdu(bad, digests), code('ISCSI_BAD_DIGEST'));
    if (pdu.data.length) {
      const badData = Buffer.from(bytes);
      badData[48 + (pdu.opcode === IscsiOpcode.scsiCommand ? pdu.ahs.length : 0) + 4]! ^= 1;
      assert.throws(() => decodePdu(badData, digests), code('ISCSI_BAD_DIGEST'));
    }
  }
});

test('CRC32C: RFC 3720 Appendix B.4 vectors, sent little-endian', () => {
  const c = new Crc32c();
  assert.equal(c.of(Buffer.alloc(32)), 0x8a9136aa);
  assert.equal(c.of(Buffer.alloc(32, 0xff)), 0x62a8ab43);
  assert.equal(c.of(Buffer.from(Array.from({ length: 32 }, (_, i) => i))), 0x46dd794e);
  assert.equal(c.of(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i))), 0x113fdb5c);
  assert.deepEqual([...writeDigest(0x8a9136aa)], [0xaa, 0x36, 0x91, 0x8a]);
  assert.equal(c.of(Buffer.from('12'), Buffer.from('3456789')), 0xe3069283, 'split input, the "123456789" check value');
});

test('malformed PDUs: truncated, trailing bytes, bad opcode, reserved stage, data where none is allowed, AHS on a non-command', () => {
  const login = encodePduBuffer(samples[6]!);
  for (const n of [0, 1, 47, 48, 50, login.length - 1]) assert.throws(() => decodePdu(login.subarray(0, n)), code('ISCSI_TRUNCATED'), `length ${n}`);
  assert.throws(() => decodePdu(Buffer.concat([login, Buffer.alloc(4)])), code('ISCSI_BAD_FIELD'));
  const op = Buffer.from(login);
  op[0] = 0x40 | 0x1f;
  assert.throws(() => decodePdu(op), code('ISCSI_BAD_OPCODE'));
  const stage = Buffer.from(login);
  stage[1] = 0x80 | (2 << 2) | 3;
  assert.throws(() => decodePdu(stage), code('ISCSI_BAD_FIELD'));
  const nsg = Buffer.from(login);
  nsg[1] = 0x80 | (1 << 2) | 2;
  assert.throws(() => decodePdu(nsg), code('ISCSI_BAD_FIELD'));
  const tmf = encodeBhs(samples[4]!);
  tmf.writeUIntBE(4, 5, 3);
  assert.throws(() => decodePdu(Buffer.concat([tmf, Buffer.alloc(4)])), code('ISCSI_BAD_FIELD'));
  const nop = encodeBhs(samples[15]!);
  nop.writeUIntBE(0, 5, 3);
  nop[4] = 1;
  assert.throws(() => decodePdu(Buffer.concat([nop, Buffer.alloc(4)])), code('ISCSI_BAD_FIELD'));
  assert.throws(() => parsePdu({ bhs: Buffer.alloc(47), ahs: Buffer.alloc(0), data: Buffer.alloc(0) }), code('ISCSI_TRUNCATED'));
});

test('reader: segment longer than MaxRecvDataSegmentLength is refused before it is buffered', () => {
  const r = new PduReader({ maxDataSegmentLength: 8 });
  assert.throws(() => r.push(encodePduBuffer(samples[0]!)), code('ISCSI_SEGMENT_TOO_LONG'));
});

test('reader: whole data segments in one chunk are not copied; states are named', () => {
  const bytes = encodePduBuffer(samples[10]!);
  const r = new PduReader();
  const [got] = r.push(bytes);
  assert.equal(got!.data.buffer, bytes.buffer, 'data is a view of the chunk');
  assert.equal(r.state, 'bhs');
  r.push(bytes.subarray(0, 50));
  assert.equal(r.state, 'data');
  assert.equal(r.missing, data.length - 2);
  r.push(bytes.subarray(50, 48 + data.length));
  assert.equal(r.state, 'padding');
});

test('encodePdu leaves the data segment uncopied and pads it', () => {
  const chunks = encodePdu(samples[11]!);
  assert.equal(chunks.length, 3);
  assert.equal(chunks[1], data);
  assert.equal(chunks[2]!.length, paddingLength(data.length));
});
