import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chapResponse, decodeBinaryValue, encodeBinaryValue, sameName, verifyChapResponse } from './chap.js';

// From testdata libiscsi-chap.pcap: tgt's challenge and libiscsi's answer for secret "secretsecret1".
const CHALLENGE = '0x2aa11f8d095f9c42c1fcb8c194e5f453507adf4af892010a7f87b92db98e78fa1f7b6fb39f0a13857bfcbd848a4e12523c41';
const RESPONSE = '0xCC546F7898989643D5162EFB468ED4F1';

test('CHAP-MD5 matches what libiscsi answered to tgt in a captured login', () => {
  const c = decodeBinaryValue(CHALLENGE)!;
  assert.equal(c.length, 50);
  assert.equal(encodeBinaryValue(chapResponse(1, 'secretsecret1', c)).toUpperCase(), RESPONSE.toUpperCase());
  assert.equal(verifyChapResponse(1, 'secretsecret1', c, decodeBinaryValue(RESPONSE)!), true);
  assert.equal(verifyChapResponse(1, 'secretsecret2', c, decodeBinaryValue(RESPONSE)!), false);
  assert.equal(verifyChapResponse(2, 'secretsecret1', c, decodeBinaryValue(RESPONSE)!), false, 'identifier is hashed');
  assert.equal(verifyChapResponse(1, 'secretsecret1', c, Buffer.alloc(15)), false, 'wrong length');
});

test('binary values: hex (odd digit count), base64, and malformed ones', () => {
  assert.deepEqual([...decodeBinaryValue('0xABC')!], [0x0a, 0xbc]);
  assert.deepEqual([...decodeBinaryValue('0Xff')!], [0xff]);
  assert.deepEqual([...decodeBinaryValue('0bAQID')!], [1, 2, 3]);
  for (const bad of ['', '0x', 'abcd', '0xZZ', '0b!!!!', '0bAQI', `0x${'00'.repeat(1025)}`]) assert.equal(decodeBinaryValue(bad), null, bad);
});

test('sameName compares exactly', () => {
  assert.equal(sameName('node1', 'node1'), true);
  assert.equal(sameName('node1', 'node2'), false);
  assert.equal(sameName('node1', 'node1 '), false);
});
