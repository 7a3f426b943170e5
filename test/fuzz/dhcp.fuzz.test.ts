/**
 * Fuzzes the BOOTP/DHCP codec with >= 100k inputs mutated from real captures (iPXE, udhcpc,
 * dnsmasq: src/wire/dhcp/testdata). Every input must decode or throw a DisklessError; what
 * decodes must also survive the PXE view, the readable dump and a re-encode that decodes to
 * the same message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { fuzzDecoder } from '../support/mutate.js';
import { capturedDhcpPayloads as capturedPayloads, DHCP_CAPTURES as CAPTURES } from '../support/dhcp-captures.js';
import { decodeDhcpMessage, encodeDhcpMessage } from '../../src/wire/dhcp/dhcp-message.js';
import { readPxeClientInfo } from '../../src/wire/dhcp/pxe-options.js';
import { formatDhcpMessage } from '../../src/wire/dhcp/format-dhcp-message.js';
import { DHCP_DEFAULT_MAX_MESSAGE } from '../../src/wire/dhcp/dhcp-constants.js';

const INPUTS = 120_000;

test(`DHCP decoder survives ${INPUTS} mutated and random inputs`, () => {
  const corpus = CAPTURES.flatMap((name) => capturedPayloads(name).map((p) => Buffer.from(p.payload)));
  assert.ok(corpus.length > 20);
  const started = Date.now();
  const result = fuzzDecoder(
    (input) => {
      const m = decodeDhcpMessage(input);
      readPxeClientInfo(m.options);
      formatDhcpMessage(m);
      const again = decodeDhcpMessage(encodeDhcpMessage(m));
      const strip = (x: typeof m) => ({ ...x, overload: undefined, options: [...x.options] });
      if (!isDeepStrictEqual(strip(again), strip(m))) throw new Error('re-encoded message decodes differently');
      encodeDhcpMessage(m, { maxLength: DHCP_DEFAULT_MAX_MESSAGE });
    },
    corpus,
    INPUTS,
  );
  assert.equal(result.inputs, INPUTS);
  assert.ok(result.accepted > 1000, `accepted ${result.accepted}`);
  assert.ok(result.rejected > 1000, `rejected ${result.rejected}`);
  assert.ok(Date.now() - started < 60_000);
});
