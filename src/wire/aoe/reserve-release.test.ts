import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDisklessError } from '../../errors/index.js';
import { decodeReserveRelease, encodeReserveRelease, MAX_RESERVE_LIST, RESERVE_HEADER_LENGTH, ReserveCommand, type ReserveRelease } from './reserve-release.js';

const a = Buffer.from('525400ae0001', 'hex');
const b = Buffer.from('525400ae0002', 'hex');
const plain = (r: ReserveRelease) => ({ command: r.command, macs: r.macs.map((m) => m.toString('hex')) });

test('decodes Reserve/Release (AoE r11 §3.4): RCmd, NMacs and the MACs', () => {
  const r = decodeReserveRelease(Buffer.from('01' + '02' + '525400ae0001' + '525400ae0002', 'hex'));
  assert.deepEqual(plain(r), { command: ReserveCommand.set, macs: [a.toString('hex'), b.toString('hex')] });
});

test('encode then decode gives the list back, from none to 255 MACs', () => {
  const lists: ReserveRelease[] = [
    { command: ReserveCommand.read, macs: [] },
    { command: ReserveCommand.set, macs: [a] },
    { command: ReserveCommand.forceSet, macs: [a, b] },
    { command: ReserveCommand.set, macs: Array.from({ length: MAX_RESERVE_LIST }, (_, i) => Buffer.from([2, 0, 0, 0, 0, i])) },
  ];
  for (const r of lists) {
    const bytes = encodeReserveRelease(r);
    assert.equal(bytes.length, RESERVE_HEADER_LENGTH + 6 * r.macs.length);
    assert.deepEqual(plain(decodeReserveRelease(bytes)), plain(r));
  }
  assert.equal(encodeReserveRelease(lists[2]!).toString('hex'), '0202525400ae0001525400ae0002');
});

test('MACs are views into the input; bytes after NMacs MACs (Ethernet padding) are ignored', () => {
  const bytes = Buffer.concat([encodeReserveRelease({ command: ReserveCommand.set, macs: [a] }), Buffer.alloc(30, 0xee)]);
  const r = decodeReserveRelease(bytes);
  assert.equal(r.macs.length, 1);
  bytes[RESERVE_HEADER_LENGTH] = 0x02;
  assert.equal(r.macs[0]!.toString('hex'), '025400ae0001');
});

test('fewer than 2 bytes, or fewer MAC bytes than NMacs says, is WIRE_TRUNCATED', () => {
  for (let len = 0; len < RESERVE_HEADER_LENGTH; len++) {
    assert.throws(() => decodeReserveRelease(Buffer.alloc(len)), (e: unknown) => isDisklessError(e, 'WIRE_TRUNCATED') && e.data.length === len, `length ${len}`);
  }
  const full = encodeReserveRelease({ command: ReserveCommand.set, macs: [a, b] });
  for (let len = RESERVE_HEADER_LENGTH; len < full.length; len++) {
    assert.throws(() => decodeReserveRelease(full.subarray(0, len)), (e: unknown) => isDisklessError(e, 'WIRE_TRUNCATED') && e.data.length === len, `length ${len}`);
  }
  assert.throws(() => decodeReserveRelease(Buffer.from('00ff', 'hex')), (e: unknown) => isDisklessError(e, 'WIRE_TRUNCATED'));
});

test('encoding RCmd out of range, more than 255 MACs or a MAC that is not 6 bytes is WIRE_BAD_FIELD naming it', () => {
  const cases: Array<[ReserveRelease, string, unknown]> = [
    [{ command: 256, macs: [] }, 'RCmd', 256],
    [{ command: -1, macs: [] }, 'RCmd', -1],
    [{ command: 0, macs: Array.from({ length: MAX_RESERVE_LIST + 1 }, () => a) }, 'NMacs', MAX_RESERVE_LIST + 1],
    [{ command: 1, macs: [a, Buffer.alloc(4)] }, 'mac', 4],
  ];
  for (const [r, field, value] of cases) {
    assert.throws(() => encodeReserveRelease(r), (e: unknown) => isDisklessError(e, 'WIRE_BAD_FIELD') && e.data.field === field && e.data.value === value && e.data.allowed !== undefined, `${field} ${String(value)}`);
  }
});
