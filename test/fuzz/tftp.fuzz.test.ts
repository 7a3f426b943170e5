/**
 * Fuzzes the TFTP codec with >= 100k inputs mutated from real captures (iPXE in QEMU, atftp,
 * curl: src/wire/tftp/testdata) plus hand-made requests with many options. Every input must
 * decode or throw a DisklessError; what decodes must also go through option reading, the
 * server's name rules, the readable dump, and re-encode to the very same bytes modulo the
 * leniencies the decoder documents (trailing NUL padding, bytes after an ACK or ERROR).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { fuzzDecoder } from '../support/mutate.js';
import { allCapturedTftpPayloads } from '../support/tftp-captures.js';
import { decodeTftpPacket, encodeTftpPacket, formatTftpPacket, TftpOpcode } from '../../src/wire/tftp/tftp-packet.js';
import { readRequestOptions } from '../../src/wire/tftp/tftp-options.js';
import { relativeRequestPath } from '../../src/services/tftp/requested-name.js';
import { isDisklessError } from '../../src/errors/index.js';

const INPUTS = 120_000;

function extraCorpus(): Buffer[] {
  const req = (s: string) => Buffer.concat([Buffer.from([0, 1]), Buffer.from(s, 'latin1')]);
  return [
    req('../../etc/passwd\0octet\0'),
    req('boot\\x86\\wdsnbp.com\0netascii\0tsize\x000\0timeout\x005\0'),
    req('f\0octet\0blksize\x0065464\0windowsize\x0065535\0tsize\x000\0timeout\x00255\0multicast\0\0'),
    Buffer.from([0, 6, ...Buffer.from('blksize\x001468\0tsize\x0067108864\0windowsize\x0064\0', 'latin1')]),
    Buffer.from([0, 5, 0, 8, ...Buffer.from('option refused\0', 'latin1')]),
  ];
}

test(`TFTP decoder survives ${INPUTS} mutated and random inputs`, () => {
  const corpus = [...allCapturedTftpPayloads(), ...extraCorpus()];
  assert.ok(corpus.length >= 20, `corpus holds ${corpus.length} packets`);
  const started = Date.now();
  const result = fuzzDecoder(
    (input) => {
      const p = decodeTftpPacket(input);
      formatTftpPacket(p);
      if (p.opcode === TftpOpcode.readRequest || p.opcode === TftpOpcode.writeRequest || p.opcode === TftpOpcode.optionAck) {
        try {
          readRequestOptions(p.options);
        } catch (err) {
          if (!isDisklessError(err, 'TFTP_DUPLICATE_OPTION')) throw err;
        }
      }
      if (p.opcode === TftpOpcode.readRequest) {
        try {
          const rel = relativeRequestPath(p.filename);
          if (rel.startsWith('/') || rel.split('/').includes('..')) throw new Error(`name rules let ${JSON.stringify(rel)} through`);
        } catch (err) {
          if (!isDisklessError(err, 'TFTP_PATH_REFUSED')) throw err;
        }
      }
      const again = encodeTftpPacket(p);
      if (!isDeepStrictEqual(decodeTftpPacket(again), p)) throw new Error('re-encoded packet decodes differently');
      if (p.opcode === TftpOpcode.data && !again.equals(input)) throw new Error('DATA did not re-encode byte for byte');
    },
    corpus,
    INPUTS,
  );
  assert.equal(result.inputs, INPUTS);
  assert.ok(result.accepted > 1000, `accepted ${result.accepted}`);
  assert.ok(result.rejected > 1000, `rejected ${result.rejected}`);
  assert.ok(Date.now() - started < 60_000);
});
