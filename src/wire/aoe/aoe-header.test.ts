import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDisklessError, type DisklessError } from '../../errors/index.js';
import {
  AOE_BROADCAST_SHELF,
  AOE_BROADCAST_SLOT,
  AOE_HEADER_LENGTH,
  AOE_VERSION,
  AoeCommand,
  AoeError,
  AoeFlag,
  checkField,
  decodeAoeHeader,
  responseHeader,
  writeAoeHeader,
  type AoeHeader,
} from './aoe-header.js';

const request: AoeHeader = { version: AOE_VERSION, flags: 0, error: 0, shelf: 7, slot: 3, command: AoeCommand.ata, tag: 0x18ae0002 };

/** Asserts `f` throws WIRE_BAD_FIELD naming `field` and `value`, with an `allowed` range. */
function assertBadField(f: () => unknown, field: string, value: unknown): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(isDisklessError(e, 'WIRE_BAD_FIELD'), String(e));
    assert.equal((e as DisklessError).data.field, field);
    assert.equal((e as DisklessError).data.value, value);
    assert.ok((e as DisklessError).data.allowed !== undefined);
    return true;
  });
}

test('decodes every field of a header (AoE r11 §2): Ver and Flags nibbles, big-endian shelf and tag', () => {
  const h = decodeAoeHeader(Buffer.from('1c06fffe0301deadbeef', 'hex'));
  assert.deepEqual(h, { version: 1, flags: AoeFlag.response | AoeFlag.error, error: AoeError.targetReserved, shelf: 0xfffe, slot: 3, command: AoeCommand.queryConfig, tag: 0xdeadbeef });
});

test('bytes after the 10 header bytes are not the header\'s', () => {
  const h = decodeAoeHeader(Buffer.from('10000001010000000001ffffffff', 'hex'));
  assert.deepEqual(h, { version: 1, flags: 0, error: 0, shelf: 1, slot: 1, command: 0, tag: 1 });
});

test('write then decode gives the header back, at any offset, touching only its 10 bytes', () => {
  const headers: AoeHeader[] = [
    request,
    { version: 0x0f, flags: 0x0f, error: 0xff, shelf: AOE_BROADCAST_SHELF, slot: AOE_BROADCAST_SLOT, command: 0xff, tag: 0xffffffff },
    { version: 0, flags: 0, error: 0, shelf: 0, slot: 0, command: 0, tag: 0 },
  ];
  for (const h of headers) {
    const out = Buffer.alloc(AOE_HEADER_LENGTH + 6, 0xaa);
    writeAoeHeader(h, out, 3);
    assert.deepEqual(decodeAoeHeader(out.subarray(3)), h);
    assert.deepEqual([...out.subarray(0, 3), ...out.subarray(13)], [0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa]);
  }
  const out = Buffer.alloc(AOE_HEADER_LENGTH);
  writeAoeHeader(request, out);
  assert.equal(out.toString('hex'), '1000000703' + '00' + '18ae0002');
});

test('every length short of 10 bytes is WIRE_TRUNCATED with the length', () => {
  for (let len = 0; len < AOE_HEADER_LENGTH; len++) {
    assert.throws(
      () => decodeAoeHeader(Buffer.alloc(len)),
      (e: unknown) => isDisklessError(e, 'WIRE_TRUNCATED') && e.data.length === len,
      `length ${len}`,
    );
  }
});

test('a field out of range, negative or fractional is WIRE_BAD_FIELD naming field, value and the allowed range', () => {
  const cases: Array<[keyof AoeHeader, number]> = [
    ['version', 16],
    ['flags', 16],
    ['error', 256],
    ['shelf', 0x10000],
    ['slot', 256],
    ['command', 256],
    ['tag', 2 ** 32],
    ['tag', -1],
    ['shelf', 1.5],
    ['slot', Number.NaN],
  ];
  for (const [field, value] of cases) assertBadField(() => writeAoeHeader({ ...request, [field]: value }, Buffer.alloc(AOE_HEADER_LENGTH)), field, value);
  assert.throws(() => checkField('x', 5, 4), (e: unknown) => isDisklessError(e, 'WIRE_BAD_FIELD') && e.data.allowed === '0-4');
  assert.doesNotThrow(() => checkField('x', 4, 4));
});

test('responseHeader: Ver 1, R set, the request\'s addresses, command and tag; E only with an error; the target\'s own address when given', () => {
  assert.deepEqual(responseHeader({ ...request, version: 2 }), { ...request, version: AOE_VERSION, flags: AoeFlag.response });
  assert.deepEqual(responseHeader(request, AoeError.badArgument), { ...request, flags: AoeFlag.response | AoeFlag.error, error: AoeError.badArgument });
  const broadcast = { ...request, shelf: AOE_BROADCAST_SHELF, slot: AOE_BROADCAST_SLOT, command: AoeCommand.queryConfig };
  assert.deepEqual(responseHeader(broadcast, 0, { shelf: 7, slot: 3 }), { ...broadcast, shelf: 7, slot: 3, flags: AoeFlag.response });
});
