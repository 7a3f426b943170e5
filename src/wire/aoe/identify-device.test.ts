import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDisklessError } from '../../errors/index.js';
import { encodeIdentifyDevice, IDENTIFY_LENGTH, identifyGeometry, identifySectors, identifyString, MAX_LBA28_SECTORS, type IdentifyInput } from './identify-device.js';

const input: IdentifyInput = { sectors: 18432, serial: 'AB12-serial', firmware: 'V1.0', model: 'diskless AoE volume' };
const word = (data: Buffer, i: number): number => data.readUInt16LE(i * 2);

test('512 bytes, a fixed ATA device (word 0), LBA (49), LBA48 + FLUSH CACHE (EXT) supported (83) and enabled (86), write cache (82/85)', () => {
  const d = encodeIdentifyDevice(input);
  assert.equal(d.length, IDENTIFY_LENGTH);
  assert.equal(word(d, 0), 0x0040);
  assert.equal(word(d, 49) & 0x0200, 0x0200, 'LBA');
  for (const w of [83, 86]) {
    assert.equal(word(d, w) & 0x0400, 0x0400, `word ${w}: 48-bit address`);
    assert.equal(word(d, w) & 0x1000, 0x1000, `word ${w}: FLUSH CACHE`);
    assert.equal(word(d, w) & 0x2000, 0x2000, `word ${w}: FLUSH CACHE EXT`);
  }
  assert.equal(word(d, 83) & 0xc000, 0x4000, 'word 83 valid: bit 14 one, bit 15 zero');
  for (const w of [82, 85]) assert.equal(word(d, w) & 0x0020, 0x0020, `word ${w}: volatile write cache`);
});

test('strings are ATA strings: two characters per word, the first in the high byte, space-padded; identifyString reads them back', () => {
  const d = encodeIdentifyDevice(input);
  assert.equal(d.subarray(20, 24).toString('latin1'), 'BA21', 'serial at word 10, byte-swapped');
  assert.equal(d.subarray(20, 40).toString('latin1'), 'BA21s-reai l        ', 'the odd last character and a pad space swap too');
  assert.equal(d.subarray(46, 54).toString('latin1'), '1V0.    ', 'firmware at word 23');
  assert.equal(d.subarray(54, 94).toString('latin1').trimEnd(), 'idkselssA Eov lomu e', 'model at word 27');
  assert.equal(d.subarray(54, 94).length, 40);
  assert.equal(identifyString(d, 10, 20), input.serial);
  assert.equal(identifyString(d, 23, 8), input.firmware);
  assert.equal(identifyString(d, 27, 40), input.model);
  const full = encodeIdentifyDevice({ ...input, serial: 'S'.repeat(20), firmware: '12345678', model: 'M'.repeat(39) + 'x' });
  assert.equal(identifyString(full, 10, 20), 'S'.repeat(20));
  assert.equal(identifyString(full, 23, 8), '12345678');
  assert.equal(identifyString(full, 27, 40), 'M'.repeat(39) + 'x');
  assert.equal(full[27 * 2 + 38], 'x'.charCodeAt(0), 'the 40th character is the low byte of word 46');
});

test('a string too long or not printable ASCII is WIRE_BAD_FIELD naming the field', () => {
  const cases: Array<[Partial<IdentifyInput>, string]> = [
    [{ serial: 'x'.repeat(21) }, 'serial'],
    [{ firmware: 'x'.repeat(9) }, 'firmware'],
    [{ model: 'x'.repeat(41) }, 'model'],
    [{ model: 'caf\u00e9' }, 'model'],
    [{ serial: 'a\nb' }, 'serial'],
  ];
  for (const [patch, field] of cases) {
    assert.throws(() => encodeIdentifyDevice({ ...input, ...patch }), (e: unknown) => isDisklessError(e, 'WIRE_BAD_FIELD') && e.data.field === field && e.data.value === Object.values(patch)[0] && e.data.allowed !== undefined, field);
  }
});

test('CHS geometry: 16 heads, 63 sectors per track, cylinders = sectors / 1008 capped at 16383, in words 1/3/6 and 54-58', () => {
  assert.deepEqual(identifyGeometry(18432), { cylinders: 18, heads: 16, sectorsPerTrack: 63 });
  assert.deepEqual(identifyGeometry(16383 * 1008), { cylinders: 16383, heads: 16, sectorsPerTrack: 63 });
  assert.deepEqual(identifyGeometry(2 ** 40), { cylinders: 16383, heads: 16, sectorsPerTrack: 63 });
  const small = encodeIdentifyDevice(input);
  assert.deepEqual([1, 3, 6, 54, 55, 56, 57, 58].map((w) => word(small, w)), [18, 16, 63, 18, 16, 63, 18 * 1008, 0]);
  assert.equal(word(small, 53) & 1, 1, 'words 54-58 valid');
  const big = encodeIdentifyDevice({ ...input, sectors: 2 ** 40 });
  const chs = 16383 * 16 * 63;
  assert.deepEqual([1, 54, 57, 58].map((w) => word(big, w)), [16383, 16383, chs & 0xffff, Math.floor(chs / 0x10000)]);
});

test('words 60-61 hold the sector count up to 0x0fffffff and are capped there above it', () => {
  const lba28 = (sectors: number) => encodeIdentifyDevice({ ...input, sectors }).readUInt32LE(120);
  assert.equal(lba28(1), 1);
  assert.equal(lba28(18432), 18432);
  assert.equal(lba28(MAX_LBA28_SECTORS), 0x0fffffff);
  assert.equal(lba28(MAX_LBA28_SECTORS + 1), 0x0fffffff);
  assert.equal(lba28(2 ** 48 - 1), 0x0fffffff);
});

test('words 100-103 hold the 48-bit sector count, least significant word first; identifySectors reads them', () => {
  const d = encodeIdentifyDevice({ ...input, sectors: 0x1234_5678_9abc });
  assert.deepEqual([100, 101, 102, 103].map((w) => word(d, w)), [0x9abc, 0x5678, 0x1234, 0]);
  for (const sectors of [1, 18432, MAX_LBA28_SECTORS, MAX_LBA28_SECTORS + 1, 2 ** 32 + 5, 2 ** 48 - 1]) {
    assert.equal(identifySectors(encodeIdentifyDevice({ ...input, sectors })), sectors, `${sectors}`);
  }
});

test('identifySectors reads words 60-61 when word 83 does not say LBA48, and needs 512 bytes', () => {
  const d = encodeIdentifyDevice({ ...input, sectors: 2 ** 40 });
  d.writeUInt16LE(word(d, 83) & ~0x0400, 83 * 2);
  assert.equal(identifySectors(d), MAX_LBA28_SECTORS);
  for (const len of [0, 200, 511]) {
    assert.throws(() => identifySectors(Buffer.alloc(len)), (e: unknown) => isDisklessError(e, 'WIRE_TRUNCATED') && e.data.length === len, `length ${len}`);
  }
});

test('integrity word 255: signature A5h and a checksum making the sum of all 512 bytes 0 mod 256', () => {
  for (const sectors of [1, 2, 255, 18432, 1_000_003, MAX_LBA28_SECTORS + 7, 2 ** 48 - 1]) {
    for (const physicalBlockSize of [512, 4096]) {
      const d = encodeIdentifyDevice({ ...input, sectors, physicalBlockSize, serial: `s${sectors}` });
      assert.equal(d[510], 0xa5, 'signature');
      assert.equal(d.reduce((sum, x) => sum + x, 0) % 256, 0, `${sectors} sectors`);
    }
  }
});

test('word 106: logical/physical sector sizes, bit 14 set; bit 13 and log2(physical/512) when a physical block holds several sectors', () => {
  const w106 = (physicalBlockSize?: number) => word(encodeIdentifyDevice(physicalBlockSize === undefined ? input : { ...input, physicalBlockSize }), 106);
  assert.equal(w106(), 0x4000);
  assert.equal(w106(512), 0x4000);
  assert.equal(w106(1024), 0x6001);
  assert.equal(w106(4096), 0x6003);
  assert.equal(w106(32768), 0x6006);
  for (const bad of [0, 256, 1000, 4097, 65536, -512]) {
    assert.throws(
      () => encodeIdentifyDevice({ ...input, physicalBlockSize: bad }),
      (e: unknown) => isDisklessError(e, 'WIRE_BAD_FIELD') && e.data.field === 'physicalBlockSize' && e.data.value === bad && Array.isArray(e.data.allowed),
      `${bad}`,
    );
  }
});

test('a sector count that is not an integer in 1..2^48-1 is WIRE_BAD_FIELD', () => {
  for (const sectors of [0, -1, 1.5, 2 ** 48, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => encodeIdentifyDevice({ ...input, sectors }), (e: unknown) => isDisklessError(e, 'WIRE_BAD_FIELD') && e.data.field === 'sectors' && Object.is(e.data.value, sectors), `${sectors}`);
  }
});
