/**
 * TFTP codec: golden dumps of real captures (iPXE in QEMU, atftp, curl; regenerate with
 * UPDATE_GOLDEN=1), byte-exact decode → encode round trips, hand-built packets of every
 * opcode, and every malformed shape asserting its error code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { capturedTftpPayloads, TFTP_CAPTURES, TFTP_TESTDATA } from '../../../test/support/tftp-captures.js';
import { isDisklessError, type ErrorCode } from '../../errors/index.js';
import { decodeTftpPacket, encodeAck, encodeError, encodeTftpPacket, formatTftpPacket, TftpErrorCode, TftpOpcode, writeDataHeader, type TftpPacket } from './tftp-packet.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const bytes = (...parts: Array<string | number[]>) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
const throwsCode = (fn: () => unknown, code: ErrorCode) => assert.throws(fn, (e: unknown) => isDisklessError(e, code));

for (const name of TFTP_CAPTURES) {
  test(`golden dump of ${name}.pcap`, () => {
    const packets = capturedTftpPayloads(name);
    assert.ok(packets.length >= 5, `capture ${name} holds ${packets.length} packets`);
    const dump = packets.map((p) => `${p.srcPort} -> ${p.dstPort} ${formatTftpPacket(decodeTftpPacket(p.payload))}`).join('\n') + '\n';
    const golden = join(TFTP_TESTDATA, `${name}.parsed`);
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, dump);
    assert.equal(dump, readFileSync(golden, 'utf8'));
  });

  test(`decode -> encode round trip of ${name}.pcap is byte-exact`, () => {
    for (const { payload } of capturedTftpPayloads(name)) assert.deepEqual(encodeTftpPacket(decodeTftpPacket(payload)), payload);
  });
}

test("iPXE's real request: RRQ boot.ipxe octet blksize 1432 tsize 0", () => {
  const rrq = decodeTftpPacket(capturedTftpPayloads('ipxe-rrq')[0]!.payload);
  assert.deepEqual(rrq, { opcode: TftpOpcode.readRequest, filename: 'boot.ipxe', mode: 'octet', options: [{ name: 'blksize', value: '1432' }, { name: 'tsize', value: '0' }] });
});

test('every opcode encodes and decodes back', () => {
  const packets: TftpPacket[] = [
    { opcode: TftpOpcode.readRequest, filename: 'pxelinux.0', mode: 'netascii', options: [] },
    { opcode: TftpOpcode.writeRequest, filename: 'a/b', mode: 'OCTET', options: [{ name: 'TSize', value: '99' }] },
    { opcode: TftpOpcode.data, block: 65535, data: Buffer.from('hello') },
    { opcode: TftpOpcode.data, block: 0, data: Buffer.alloc(0) },
    { opcode: TftpOpcode.ack, block: 0 },
    { opcode: TftpOpcode.error, errorCode: TftpErrorCode.fileNotFound, message: 'file not found' },
    { opcode: TftpOpcode.optionAck, options: [{ name: 'blksize', value: '1468' }, { name: 'windowsize', value: '64' }] },
    { opcode: TftpOpcode.optionAck, options: [] },
  ];
  for (const p of packets) assert.deepEqual(decodeTftpPacket(encodeTftpPacket(p)), p);
});

test('exact wire bytes of ACK, ERROR and a DATA header', () => {
  assert.deepEqual(encodeAck(258), hex('0004 0102'));
  assert.deepEqual(encodeError(2, 'no'), hex('0005 0002 6e6f 00'));
  const buf = Buffer.alloc(6);
  writeDataHeader(buf, 2, 0xfffe);
  assert.deepEqual(buf, hex('0000 0003 fffe'));
  assert.deepEqual(encodeTftpPacket({ opcode: TftpOpcode.readRequest, filename: 'f', mode: 'octet', options: [{ name: 'tsize', value: '0' }] }), bytes([0, 1], 'f\0octet\0tsize\x000\0'));
});

test('latin1 names survive byte for byte', () => {
  const raw = bytes([0, 1], [0xc3, 0xa9, 0xff, 0x5c], '\0octet\0');
  const p = decodeTftpPacket(raw);
  assert.equal(p.opcode, TftpOpcode.readRequest);
  assert.deepEqual(encodeTftpPacket(p), raw);
});

test('lenient shapes real clients send', () => {
  // Trailing NUL padding after the options.
  const padded = decodeTftpPacket(bytes([0, 1], 'f\0octet\0blksize\x001024\0', [0, 0, 0]));
  assert.deepEqual(padded.opcode === TftpOpcode.readRequest && padded.options, [{ name: 'blksize', value: '1024' }]);
  // Mode in any case.
  assert.equal((decodeTftpPacket(bytes([0, 1], 'f\0OcTeT\0')) as { mode: string }).mode, 'OcTeT');
  // ACK with extra bytes, ERROR without NUL.
  assert.deepEqual(decodeTftpPacket(hex('0004 0007 0000')), { opcode: TftpOpcode.ack, block: 7 });
  assert.deepEqual(decodeTftpPacket(bytes([0, 5, 0, 1], 'gone')), { opcode: TftpOpcode.error, errorCode: 1, message: 'gone' });
  assert.deepEqual(decodeTftpPacket(hex('0005 0000')), { opcode: TftpOpcode.error, errorCode: 0, message: '' });
});

test('truncated packets are TFTP_TRUNCATED', () => {
  for (const b of [hex(''), hex('00'), hex('0003 00'), hex('0004 00'), hex('0005 00')]) throwsCode(() => decodeTftpPacket(b), 'TFTP_TRUNCATED');
  throwsCode(() => decodeTftpPacket(bytes([0, 1], 'boot.ipxe')), 'TFTP_TRUNCATED'); // filename without NUL
  throwsCode(() => decodeTftpPacket(bytes([0, 1], 'boot.ipxe\0octet')), 'TFTP_TRUNCATED'); // mode without NUL
  throwsCode(() => decodeTftpPacket(bytes([0, 1], 'f\0octet\0blksize\x001024')), 'TFTP_TRUNCATED'); // value without NUL
  throwsCode(() => decodeTftpPacket(bytes([0, 6], 'blksize')), 'TFTP_TRUNCATED');
});

test('unknown opcodes are TFTP_BAD_OPCODE', () => {
  for (const op of [0, 7, 0xffff]) throwsCode(() => decodeTftpPacket(Buffer.from([op >> 8, op & 0xff, 0, 0])), 'TFTP_BAD_OPCODE');
});

test('bad fields are TFTP_BAD_FIELD', () => {
  throwsCode(() => decodeTftpPacket(bytes([0, 1], 'f\0binary\0')), 'TFTP_BAD_FIELD'); // unknown mode
  throwsCode(() => decodeTftpPacket(bytes([0, 1], 'boot.ipxe\0../../etc/passwd\0octet\0')), 'TFTP_BAD_FIELD'); // NUL inside the name
  throwsCode(() => decodeTftpPacket(bytes([0, 1], 'f\0octet\0blksize\0')), 'TFTP_BAD_FIELD'); // option without value
  throwsCode(() => decodeTftpPacket(bytes([0, 1], 'f\0octet\0\x00x\0')), 'TFTP_BAD_FIELD'); // empty name then data
  throwsCode(() => decodeTftpPacket(bytes([0, 6], '\0x\0')), 'TFTP_BAD_FIELD');
  throwsCode(() => encodeAck(65536), 'TFTP_BAD_FIELD');
  throwsCode(() => encodeAck(-1), 'TFTP_BAD_FIELD');
  throwsCode(() => encodeError(70000, 'x'), 'TFTP_BAD_FIELD');
  throwsCode(() => encodeError(0, 'a\0b'), 'TFTP_BAD_FIELD');
  throwsCode(() => encodeTftpPacket({ opcode: TftpOpcode.readRequest, filename: 'a\0', mode: 'octet', options: [] }), 'TFTP_BAD_FIELD');
  throwsCode(() => encodeTftpPacket({ opcode: TftpOpcode.readRequest, filename: 'é€', mode: 'octet', options: [] }), 'TFTP_BAD_FIELD');
  throwsCode(() => encodeTftpPacket({ opcode: TftpOpcode.optionAck, options: [{ name: '', value: '1' }] }), 'TFTP_BAD_FIELD');
  throwsCode(() => encodeTftpPacket({ opcode: TftpOpcode.data, block: 1.5, data: Buffer.alloc(0) }), 'TFTP_BAD_FIELD');
});

test('DATA payload is a view of the datagram', () => {
  const dgram = hex('0003 0001 aabbcc');
  const p = decodeTftpPacket(dgram);
  assert.ok(p.opcode === TftpOpcode.data);
  assert.equal(p.data.buffer, dgram.buffer);
  assert.deepEqual([...p.data], [0xaa, 0xbb, 0xcc]);
});
