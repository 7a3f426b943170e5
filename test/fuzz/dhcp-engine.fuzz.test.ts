/**
 * Drives the DHCP server's decision path (DhcpEngine.inspect + respond + reply encoding) with
 * requests mutated from the real captures, in both modes, against one long-lived lease table:
 * whatever decodes must be answered, dropped or ignored without an exception, and every
 * reply must encode within the client's size limit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDisklessError } from '../../src/errors/index.js';
import { DhcpEngine, type InspectedRequest } from '../../src/services/dhcp/dhcp-engine.js';
import { decodeDhcpMessage, encodeDhcpMessage } from '../../src/wire/dhcp/dhcp-message.js';
import { BootpOp, DhcpOption } from '../../src/wire/dhcp/dhcp-constants.js';
import { ipv4Value } from '../../src/wire/dhcp/option-values.js';
import { mutate, prng } from '../support/mutate.js';
import { capturedDhcpPayloads, DHCP_CAPTURES } from '../support/dhcp-captures.js';

const INPUTS = 40_000;

test(`DhcpEngine answers or drops ${INPUTS} mutated requests without throwing`, () => {
  const corpus: Buffer[] = DHCP_CAPTURES.flatMap((n) => capturedDhcpPayloads(n).map((p) => Buffer.from(p.payload)));
  // turn the captured replies into requests too, so more inputs reach the engine
  for (const c of [...corpus]) if (c[0] === BootpOp.reply) corpus.push(Buffer.concat([Buffer.from([BootpOp.request]), c.subarray(1)]));
  // and the captured REQUESTs addressed to this server rather than to dnsmasq
  for (const c of [...corpus]) {
    const m = decodeDhcpMessage(c);
    if (m.op === BootpOp.request && m.options.has(DhcpOption.serverIdentifier)) {
      m.options.set(DhcpOption.serverIdentifier, ipv4Value('10.201.0.2'));
      corpus.push(encodeDhcpMessage(m));
    }
  }
  const base = { serverAddress: '10.201.0.2', subnet: '10.201.0.0/24', poolStart: '10.201.0.100', poolEnd: '10.201.0.150', dns: [], leaseTimeSeconds: 600, offerHoldMs: 5000, declineHoldMs: 60_000 };
  const engines = [new DhcpEngine({ ...base, mode: 'authoritative' }), new DhcpEngine({ ...base, mode: 'proxy' })];
  const rand = prng(0xd11c);
  const outcomes = new Map<string, number>();
  let now = 1_700_000_000_000;
  for (let i = 0; i < INPUTS; i++) {
    let input: Buffer = corpus[Math.floor(rand() * corpus.length)]!;
    if (rand() < 0.7) input = mutate(input, rand, corpus);
    let message;
    try {
      message = decodeDhcpMessage(input);
    } catch (err) {
      if (isDisklessError(err)) continue;
      throw err;
    }
    now += Math.floor(rand() * 2000);
    const engine = engines[i % 2]!;
    const port = rand() < 0.2 ? 4011 : 67;
    const r = engine.inspect(message, { port, sourceAddress: '10.201.0.150', sourcePort: 68 });
    if ('drop' in r) {
      outcomes.set(r.drop, (outcomes.get(r.drop) ?? 0) + 1);
      continue;
    }
    const decision = rand() < 0.1 ? null : { bootFile: rand() < 0.5 ? 'undionly.kpxe' : 'http://10.201.0.2:8080/boot/x.ipxe', nextServer: '10.201.0.2', ...(rand() < 0.2 ? { address: '10.201.0.50' } : {}) };
    const o = engine.respond(r as InspectedRequest, decision, now);
    const key = o.action === 'drop' ? o.reason : o.event;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    if (o.action === 'reply') {
      const bytes = encodeDhcpMessage(o.reply, { maxLength: o.maxLength });
      assert.ok(bytes.length <= Math.max(300, o.maxLength));
    }
  }
  for (const expected of ['offer', 'ack', 'nak', 'release', 'proxy-offer', 'proxy-ack', 'other-server', 'bootreply']) assert.ok(outcomes.has(expected), `reached ${expected}: ${JSON.stringify([...outcomes])}`);
});
