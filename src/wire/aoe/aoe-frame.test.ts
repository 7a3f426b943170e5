import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDisklessError } from '../../errors/index.js';
import { EtherType } from '../ethernet/ethernet-frame.js';
import { AOE_ARG_OFFSET, AOE_ATA_DATA_OFFSET, AOE_OFFSET, decodeAoeBody, decodeAoeFrame, encodeAoeFrame, MIN_FRAME_LENGTH, writeFrameHeader } from './aoe-frame.js';
import { AOE_VERSION, AoeCommand, type AoeHeader } from './aoe-header.js';
import { encodeQueryConfig } from './query-config.js';
import { encodeMacMaskList } from './mac-mask-list.js';
import { encodeReserveRelease } from './reserve-release.js';

const dst = Buffer.from('ffffffffffff', 'hex');
const src = Buffer.from('525400ae0001', 'hex');
const header: AoeHeader = { version: AOE_VERSION, flags: 0, error: 0, shelf: 1, slot: 1, command: AoeCommand.queryConfig, tag: 0x18ae0001 };

test('offsets: AoE header after 14 Ethernet bytes, argument at 24, ATA data at 36', () => {
  assert.deepEqual([AOE_OFFSET, AOE_ARG_OFFSET, AOE_ATA_DATA_OFFSET, MIN_FRAME_LENGTH], [14, 24, 36, 60]);
});

test('encode then decode: addresses, EtherType 0x88a2, header, argument parts in order; zero-padded to 60 bytes', () => {
  const frame = encodeAoeFrame(dst, src, header, Buffer.from([1, 2]), Buffer.from([3]));
  assert.equal(frame.length, MIN_FRAME_LENGTH);
  assert.equal(frame.readUInt16BE(12), EtherType.aoe);
  const f = decodeAoeFrame(frame);
  assert.deepEqual([f.destination.toString('hex'), f.source.toString('hex')], ['ffffffffffff', '525400ae0001']);
  assert.deepEqual(f.header, header);
  assert.deepEqual([...f.arg.subarray(0, 3)], [1, 2, 3]);
  assert.equal(f.arg.length, MIN_FRAME_LENGTH - AOE_ARG_OFFSET);
  assert.ok(f.arg.subarray(3).every((x) => x === 0));
  const long = encodeAoeFrame(dst, src, header, Buffer.alloc(1000, 7));
  assert.equal(long.length, AOE_ARG_OFFSET + 1000, 'no padding past 60');
});

test('decodeAoeBody picks the argument decoder of the command; an unknown command is undefined', () => {
  assert.equal(decodeAoeBody(AoeCommand.queryConfig, encodeQueryConfig({ bufferCount: 1, firmwareVersion: 2, sectorCount: 3, aoeVersion: 1, command: 0, config: Buffer.alloc(0) }))?.command, AoeCommand.queryConfig);
  assert.equal(decodeAoeBody(AoeCommand.macMaskList, encodeMacMaskList({ command: 0, error: 0, directives: [] }))?.command, AoeCommand.macMaskList);
  assert.equal(decodeAoeBody(AoeCommand.reserveRelease, encodeReserveRelease({ command: 0, macs: [] }))?.command, AoeCommand.reserveRelease);
  assert.equal(decodeAoeBody(AoeCommand.ata, Buffer.alloc(12))?.command, AoeCommand.ata);
  for (const command of [4, 0xef, 0xf0, 0xff]) assert.equal(decodeAoeBody(command, Buffer.alloc(40)), undefined);
  assert.throws(() => decodeAoeBody(AoeCommand.ata, Buffer.alloc(11)), (e: unknown) => isDisklessError(e, 'WIRE_TRUNCATED'));
});

test('a frame shorter than the Ethernet and AoE headers is WIRE_TRUNCATED', () => {
  const frame = encodeAoeFrame(dst, src, header);
  for (let len = 0; len < AOE_ARG_OFFSET; len++) {
    assert.throws(() => decodeAoeFrame(frame.subarray(0, len)), (e: unknown) => isDisklessError(e, 'WIRE_TRUNCATED'), `length ${len}`);
  }
  assert.equal(decodeAoeFrame(frame.subarray(0, AOE_ARG_OFFSET)).arg.length, 0);
});

test('another EtherType (an 802.1Q tag included) is WIRE_BAD_FIELD with the value and 0x88a2 allowed', () => {
  for (const etherType of [EtherType.ipv4, 0x8100, 0x88a3]) {
    const frame = encodeAoeFrame(dst, src, header);
    frame.writeUInt16BE(etherType, 12);
    assert.throws(() => decodeAoeFrame(frame), (e: unknown) => isDisklessError(e, 'WIRE_BAD_FIELD') && e.data.field === 'etherType' && e.data.value === etherType && JSON.stringify(e.data.allowed) === '[34978]');
  }
});

test('a MAC address shorter than 6 bytes, or a header field out of range, is WIRE_BAD_FIELD', () => {
  assert.throws(() => encodeAoeFrame(Buffer.alloc(5), src, header), (e: unknown) => isDisklessError(e, 'WIRE_BAD_FIELD') && e.data.field === 'mac' && e.data.value === 5);
  assert.throws(() => encodeAoeFrame(dst, Buffer.alloc(0), header), (e: unknown) => isDisklessError(e, 'WIRE_BAD_FIELD') && e.data.field === 'mac' && e.data.value === 0);
  const out = Buffer.alloc(AOE_ARG_OFFSET);
  assert.throws(() => writeFrameHeader(out, dst, src, { ...header, slot: 256 }), (e: unknown) => isDisklessError(e, 'WIRE_BAD_FIELD') && e.data.field === 'slot');
});
