import { test } from 'node:test';
import assert from 'node:assert/strict';
import { optionalNative } from './native-addon.js';

test('optionalNative gives an export of the built addon, the same one every time, and undefined for a name it lacks', () => {
  const pread = optionalNative<(...a: unknown[]) => number>('preadNoWait');
  assert.equal(typeof pread, 'function', 'make builds the addon before the tests');
  assert.equal(optionalNative('preadNoWait'), pread);
  assert.equal(optionalNative('noSuchExport'), undefined);
  assert.equal(optionalNative('noSuchExport'), undefined, 'a missing export stays missing (and is not looked up again)');
});
