import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDisklessError } from '../../errors/index.js';
import { decodeTextKeys, encodeTextKeys, pairs } from './text-keys.js';

const code = (c: string) => (e: unknown) => isDisklessError(e) && e.code === c;

test('key=value pairs round trip, order and duplicates kept, UTF-8 values', () => {
  const p = pairs(['InitiatorName', 'iqn.2010-04.org.ipxe:x'], ['SessionType', 'Normal'], ['X-com.example.k', 'ümlaut'], ['SessionType', 'Discovery'], ['Empty', '']);
  const b = encodeTextKeys(p);
  assert.equal(b.toString('latin1').split('\0').length, 6);
  assert.deepEqual(decodeTextKeys(b), p);
  assert.deepEqual(decodeTextKeys(Buffer.alloc(0)), []);
  assert.deepEqual(decodeTextKeys(Buffer.from('A=b=c\0')), [{ key: 'A', value: 'b=c' }], 'only the first = splits');
});

test('malformed text is ISCSI_BAD_TEXT', () => {
  for (const s of ['A=b', 'novalue\0', '=v\0', 'bad key=v\0', `${'K'.repeat(64)}=v\0`, 'A=b\0C', `A=${'v'.repeat(8193)}\0`, '\0']) {
    assert.throws(() => decodeTextKeys(Buffer.from(s)), code('ISCSI_BAD_TEXT'), JSON.stringify(s.slice(0, 20)));
  }
  assert.throws(() => encodeTextKeys(pairs(['a b', 'x'])), code('ISCSI_BAD_TEXT'));
  assert.throws(() => encodeTextKeys(pairs(['A', 'x\0y'])), code('ISCSI_BAD_TEXT'));
});
