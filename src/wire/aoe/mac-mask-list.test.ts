import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDisklessError } from '../../errors/index.js';
import {
  checkMac,
  decodeMacMaskList,
  encodeMacMaskList,
  MAC_MASK_DIRECTIVE_LENGTH,
  MAC_MASK_HEADER_LENGTH,
  MaskCommand,
  MaskDirective,
  MaskError,
  MAX_MASK_LIST,
  type MacMaskList,
} from './mac-mask-list.js';

const a = Buffer.from('525400ae0001', 'hex');
const b = Buffer.from('525400ae0002', 'hex');
const plain = (m: MacMaskList) => ({ ...m, directives: m.directives.map((d) => [d.command, d.mac.toString('hex')]) });

test('decodes Mac Mask List (AoE r11 §3.3): MCmd, MError, Dir Count and 8-byte directives (reserved, DCmd, MAC)', () => {
  const m = decodeMacMaskList(Buffer.from('00' + '01' + '00' + '02' + '0001525400ae0001' + '0002525400ae0002', 'hex'));
  assert.deepEqual(plain(m), { command: MaskCommand.edit, error: MaskError.none, count: 2, directives: [[MaskDirective.add, a.toString('hex')], [MaskDirective.delete, b.toString('hex')]] });
});

test('encode then decode gives the list back; Dir Count defaults to the number of directives', () => {
  const lists: Array<Omit<MacMaskList, 'count'>> = [
    { command: MaskCommand.read, error: MaskError.none, directives: [] },
    { command: MaskCommand.edit, error: MaskError.none, directives: [{ command: MaskDirective.add, mac: a }, { command: MaskDirective.delete, mac: b }, { command: MaskDirective.none, mac: Buffer.alloc(6) }] },
    { command: MaskCommand.read, error: MaskError.none, directives: Array.from({ length: MAX_MASK_LIST }, (_, i) => ({ command: MaskDirective.none, mac: Buffer.from([2, 0, 0, 0, i >> 8, i & 0xff]) })) },
  ];
  for (const l of lists) {
    const bytes = encodeMacMaskList(l);
    assert.equal(bytes.length, MAC_MASK_HEADER_LENGTH + l.directives.length * MAC_MASK_DIRECTIVE_LENGTH);
    assert.deepEqual(plain(decodeMacMaskList(bytes)), plain({ ...l, count: l.directives.length }));
  }
  assert.equal(encodeMacMaskList(lists[1]!).subarray(0, 12).toString('hex'), '00010003' + '0001525400ae0001');
});

test('the most MACs one answer lists make a 1500-byte frame with the Ethernet header, within a 1500-byte MTU', () => {
  const payload = 10 + MAC_MASK_HEADER_LENGTH + MAX_MASK_LIST * MAC_MASK_DIRECTIVE_LENGTH;
  assert.equal(14 + payload, 1500);
  assert.ok(payload <= 1500);
});

test('an error response carries the failing directive\'s index in Dir Count and no directives: not truncated', () => {
  const bytes = encodeMacMaskList({ command: MaskCommand.edit, error: MaskError.badDirective, count: 1, directives: [] });
  assert.equal(bytes.toString('hex'), '00010201');
  assert.deepEqual(plain(decodeMacMaskList(bytes)), { command: MaskCommand.edit, error: MaskError.badDirective, count: 1, directives: [] });
  // With directives present, at most `count` of them are read.
  const withList = encodeMacMaskList({ command: MaskCommand.edit, error: MaskError.listFull, count: 1, directives: [{ command: 1, mac: a }, { command: 1, mac: b }] });
  assert.equal(decodeMacMaskList(withList).directives.length, 1);
});

test('directives after Dir Count (or Ethernet padding) are ignored', () => {
  const bytes = Buffer.concat([encodeMacMaskList({ command: MaskCommand.read, error: 0, count: 1, directives: [{ command: 0, mac: a }, { command: 0, mac: b }] }), Buffer.alloc(20)]);
  const m = decodeMacMaskList(bytes);
  assert.deepEqual(plain(m).directives, [[0, a.toString('hex')]]);
});

test('fewer than 4 bytes, or fewer whole directives than Dir Count, is WIRE_TRUNCATED', () => {
  for (let len = 0; len < MAC_MASK_HEADER_LENGTH; len++) {
    assert.throws(() => decodeMacMaskList(Buffer.alloc(len)), (e: unknown) => isDisklessError(e, 'WIRE_TRUNCATED') && e.data.length === len, `length ${len}`);
  }
  const full = encodeMacMaskList({ command: MaskCommand.edit, error: 0, directives: [{ command: 1, mac: a }, { command: 1, mac: b }] });
  for (let len = MAC_MASK_HEADER_LENGTH; len < full.length; len++) {
    assert.throws(() => decodeMacMaskList(full.subarray(0, len)), (e: unknown) => isDisklessError(e, 'WIRE_TRUNCATED') && e.data.length === len, `length ${len}`);
  }
  assert.equal(decodeMacMaskList(full).directives.length, 2);
});

test('encoding a field out of range or a MAC that is not 6 bytes is WIRE_BAD_FIELD naming it', () => {
  const base = { command: MaskCommand.edit, error: 0, directives: [{ command: MaskDirective.add, mac: a }] };
  const cases: Array<[() => unknown, string, unknown]> = [
    [() => encodeMacMaskList({ ...base, command: 256 }), 'MCmd', 256],
    [() => encodeMacMaskList({ ...base, error: -1 }), 'MError', -1],
    [() => encodeMacMaskList({ ...base, count: 256 }), 'Dir Count', 256],
    [() => encodeMacMaskList({ ...base, directives: Array.from({ length: 256 }, () => ({ command: 0, mac: a })) }), 'Dir Count', 256],
    [() => encodeMacMaskList({ ...base, directives: [{ command: 256, mac: a }] }), 'DCmd', 256],
    [() => encodeMacMaskList({ ...base, directives: [{ command: 1, mac: Buffer.alloc(5) }] }), 'mac', 5],
    [() => checkMac(Buffer.alloc(7)), 'mac', 7],
  ];
  for (const [f, field, value] of cases) {
    assert.throws(f, (e: unknown) => isDisklessError(e, 'WIRE_BAD_FIELD') && e.data.field === field && e.data.value === value && e.data.allowed !== undefined, `${field} ${String(value)}`);
  }
});
