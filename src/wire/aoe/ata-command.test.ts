import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDisklessError, type DisklessError } from '../../errors/index.js';
import { ATA_HEADER_LENGTH, AtaFlag, AtaOpcode, AtaStatus, decodeAtaArg, effectiveLba, SECTOR_SIZE, writeAtaHeader, type AtaArg } from './ata-command.js';

const readExt: Omit<AtaArg, 'data'> = { flags: AtaFlag.extended, featureOrError: 0, sectorCount: 2, commandOrStatus: AtaOpcode.readSectorsExt, lba: 64 };

test('decodes the ATA argument (AoE r11 §3.1): AFlags, registers, LBA0..LBA5 least significant first, data after 12 bytes', () => {
  const arg = Buffer.from('41' + '04' + '02' + '51' + '010203040506' + '0000' + 'cafe', 'hex');
  const a = decodeAtaArg(arg);
  assert.deepEqual({ ...a, data: [...a.data] }, { flags: AtaFlag.extended | AtaFlag.write, featureOrError: 4, sectorCount: 2, commandOrStatus: AtaStatus.ready | AtaStatus.seekComplete | AtaStatus.error, lba: 0x060504030201, data: [0xca, 0xfe] });
});

test('the data is a view into the input, not a copy', () => {
  const arg = Buffer.alloc(ATA_HEADER_LENGTH + SECTOR_SIZE);
  const a = decodeAtaArg(arg);
  arg[ATA_HEADER_LENGTH] = 0x5a;
  assert.equal(a.data.length, SECTOR_SIZE);
  assert.equal(a.data[0], 0x5a);
});

test('write then decode gives the header back; the reserved bytes 10-11 are written zero; nothing outside 12 bytes is touched', () => {
  const cases: Array<Omit<AtaArg, 'data'>> = [
    readExt,
    { flags: 0xff, featureOrError: 0xff, sectorCount: 0xff, commandOrStatus: 0xff, lba: 2 ** 48 - 1 },
    { flags: 0, featureOrError: 0, sectorCount: 0, commandOrStatus: 0, lba: 0 },
    { flags: AtaFlag.device | AtaFlag.async | AtaFlag.write, featureOrError: 0, sectorCount: 1, commandOrStatus: AtaOpcode.writeSectors, lba: 0xe0123456 },
  ];
  for (const c of cases) {
    const out = Buffer.alloc(ATA_HEADER_LENGTH + 4, 0xaa);
    writeAtaHeader(c, out, 2);
    assert.deepEqual([out[12], out[13]], [0, 0], 'reserved');
    assert.deepEqual([out[0], out[1], out[14], out[15]], [0xaa, 0xaa, 0xaa, 0xaa], 'outside');
    const back = decodeAtaArg(out.subarray(2, 2 + ATA_HEADER_LENGTH));
    assert.deepEqual({ ...back, data: back.data.length }, { ...c, data: 0 });
  }
  const out = Buffer.alloc(ATA_HEADER_LENGTH);
  writeAtaHeader(readExt, out);
  assert.equal(out.toString('hex'), '4000022440000000000000' + '00');
});

test('every length short of 12 bytes is WIRE_TRUNCATED with the length', () => {
  for (let len = 0; len < ATA_HEADER_LENGTH; len++) {
    assert.throws(() => decodeAtaArg(Buffer.alloc(len)), (e: unknown) => isDisklessError(e, 'WIRE_TRUNCATED') && e.data.length === len, `length ${len}`);
  }
  assert.equal(decodeAtaArg(Buffer.alloc(ATA_HEADER_LENGTH)).data.length, 0);
});

test('a register out of range is WIRE_BAD_FIELD naming field, value and the allowed range', () => {
  const cases: Array<[keyof Omit<AtaArg, 'data'>, number, string]> = [
    ['flags', 256, 'ATA flags'],
    ['featureOrError', -1, 'ATA feature/error'],
    ['sectorCount', 256, 'ATA sector count'],
    ['commandOrStatus', 1.5, 'ATA command/status'],
    ['lba', 2 ** 48, 'ATA LBA'],
    ['lba', -1, 'ATA LBA'],
  ];
  for (const [key, value, field] of cases) {
    assert.throws(
      () => writeAtaHeader({ ...readExt, [key]: value }, Buffer.alloc(ATA_HEADER_LENGTH)),
      (e: unknown) => isDisklessError(e, 'WIRE_BAD_FIELD') && e.data.field === field && Object.is((e as DisklessError).data.value, value) && typeof e.data.allowed === 'string',
      `${key} ${value}`,
    );
  }
});

test('effectiveLba: a non-extended command means LBA0-2 and LBA3\'s low nibble; the device bits and LBA4-5 do not count', () => {
  // iPXE ORs the device register (0xe0: LBA mode + obsolete bits) into LBA3 of every non-extended command.
  assert.equal(effectiveLba({ flags: 0, lba: 0xe0000000 }), 0);
  assert.equal(effectiveLba({ flags: 0, lba: 0xe0123456 }), 0x123456);
  assert.equal(effectiveLba({ flags: 0, lba: 0xef654321 }), 0x0f654321);
  assert.equal(effectiveLba({ flags: AtaFlag.device | AtaFlag.write, lba: 0xabcd_f0000001 }), 1);
  assert.equal(effectiveLba({ flags: 0, lba: 0x0fffffff }), 0x0fffffff);
});

test('effectiveLba: an extended command (E flag) means all 48 bits', () => {
  assert.equal(effectiveLba({ flags: AtaFlag.extended, lba: 0xe0000000 }), 0xe0000000);
  assert.equal(effectiveLba({ flags: AtaFlag.extended | AtaFlag.write, lba: 2 ** 48 - 1 }), 2 ** 48 - 1);
  assert.equal(effectiveLba({ flags: AtaFlag.extended, lba: 0x1_0000_0000 }), 0x1_0000_0000);
});

test('AFlags bits sit where AoE r11 §3.1 puts them: E 0x40, D 0x10, A 0x02, W 0x01', () => {
  assert.deepEqual(AtaFlag, { extended: 0x40, device: 0x10, async: 0x02, write: 0x01 });
});
