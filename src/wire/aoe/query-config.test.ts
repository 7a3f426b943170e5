import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDisklessError } from '../../errors/index.js';
import { ConfigCommand, decodeQueryConfig, encodeQueryConfig, MAX_CONFIG_STRING, QUERY_CONFIG_LENGTH, type QueryConfig } from './query-config.js';

const response: QueryConfig = { bufferCount: 16, firmwareVersion: 0x4019, sectorCount: 2, aoeVersion: 1, command: ConfigCommand.read, config: Buffer.from('diskless') };

test('decodes the Query Config argument (AoE r11 §3.2): big-endian counts, Ver and CCmd nibbles, the string its length says', () => {
  const q = decodeQueryConfig(Buffer.from('0010' + '4019' + '02' + '13' + '0003' + '616263' + '000000', 'hex'));
  assert.deepEqual({ ...q, config: q.config.toString() }, { bufferCount: 16, firmwareVersion: 0x4019, sectorCount: 2, aoeVersion: 1, command: ConfigCommand.setIfEmpty, config: 'abc' });
});

test('Ver is the high nibble of byte 5 and CCmd the whole low nibble', () => {
  const q = decodeQueryConfig(Buffer.from('0000000000' + 'f9' + '0000', 'hex'));
  assert.deepEqual([q.aoeVersion, q.command], [15, 9]);
  assert.deepEqual([decodeQueryConfig(Buffer.from('00000000001f0000', 'hex')).command, decodeQueryConfig(Buffer.from('00000000001f0000', 'hex')).aoeVersion], [15, 1]);
});

test('encode then decode gives the argument back, for every CCmd and for strings up to 1024 bytes', () => {
  for (const command of Object.values(ConfigCommand)) {
    for (const config of [Buffer.alloc(0), Buffer.from('x'), Buffer.from('diskless:aoe-fixture'), Buffer.alloc(MAX_CONFIG_STRING, 0x41)]) {
      const q = { ...response, command, config };
      const bytes = encodeQueryConfig(q);
      assert.equal(bytes.length, QUERY_CONFIG_LENGTH + config.length);
      assert.equal(bytes.readUInt16BE(6), config.length);
      const back = decodeQueryConfig(bytes);
      assert.deepEqual({ ...back, config: back.config.toString('hex') }, { ...q, config: config.toString('hex') });
    }
  }
  const max: QueryConfig = { bufferCount: 0xffff, firmwareVersion: 0xffff, sectorCount: 0xff, aoeVersion: 0x0f, command: 0x0f, config: Buffer.alloc(0) };
  assert.equal(encodeQueryConfig(max).toString('hex'), 'ffffffffff' + 'ff' + '0000');
});

test('the config string is a view into the input, and Ethernet padding after it is not part of it', () => {
  const arg = Buffer.concat([encodeQueryConfig({ ...response, config: Buffer.from('ab') }), Buffer.alloc(30)]);
  const q = decodeQueryConfig(arg);
  assert.equal(q.config.toString(), 'ab');
  arg[QUERY_CONFIG_LENGTH] = 0x7a;
  assert.equal(q.config.toString(), 'zb');
});

test('fewer than 8 bytes, or fewer string bytes than the length says, is WIRE_TRUNCATED', () => {
  for (let len = 0; len < QUERY_CONFIG_LENGTH; len++) {
    assert.throws(() => decodeQueryConfig(Buffer.alloc(len)), (e: unknown) => isDisklessError(e, 'WIRE_TRUNCATED') && e.data.length === len, `length ${len}`);
  }
  const full = encodeQueryConfig({ ...response, config: Buffer.from('abcde') });
  for (let len = QUERY_CONFIG_LENGTH; len < full.length; len++) {
    assert.throws(() => decodeQueryConfig(full.subarray(0, len)), (e: unknown) => isDisklessError(e, 'WIRE_TRUNCATED') && e.data.length === len, `length ${len}`);
  }
  assert.equal(decodeQueryConfig(full).config.toString(), 'abcde');
});

test('a config string length over 1024 is WIRE_BAD_FIELD, even when the bytes are there', () => {
  const arg = Buffer.alloc(QUERY_CONFIG_LENGTH + 1025);
  arg.writeUInt16BE(1025, 6);
  assert.throws(
    () => decodeQueryConfig(arg),
    (e: unknown) => isDisklessError(e, 'WIRE_BAD_FIELD') && e.data.field === 'config string length' && e.data.value === 1025 && e.data.allowed === '0-1024',
  );
  arg.writeUInt16BE(0xffff, 6);
  assert.throws(() => decodeQueryConfig(arg), (e: unknown) => isDisklessError(e, 'WIRE_BAD_FIELD') && e.data.value === 0xffff);
});

test('encoding a field out of range is WIRE_BAD_FIELD naming it', () => {
  const cases: Array<[Partial<QueryConfig>, string, number]> = [
    [{ bufferCount: 0x10000 }, 'buffer count', 0x10000],
    [{ firmwareVersion: -1 }, 'firmware version', -1],
    [{ sectorCount: 256 }, 'sector count', 256],
    [{ aoeVersion: 16 }, 'AoE version', 16],
    [{ command: 16 }, 'CCmd', 16],
    [{ config: Buffer.alloc(MAX_CONFIG_STRING + 1) }, 'config string length', MAX_CONFIG_STRING + 1],
  ];
  for (const [patch, field, value] of cases) {
    assert.throws(
      () => encodeQueryConfig({ ...response, ...patch }),
      (e: unknown) => isDisklessError(e, 'WIRE_BAD_FIELD') && e.data.field === field && e.data.value === value && typeof e.data.allowed === 'string',
      field,
    );
  }
});
