/**
 * Fuzzing the iSCSI/SCSI decoders (>= 100k inputs each, seeded with every PDU of the real
 * captures) and a live target (a few thousand mutated PDUs over TCP on loopback). Decoders
 * may only throw DisklessErrors; the target must never fail internally, must keep serving
 * new sessions, and must answer each bad PDU with a Reject or a dropped connection.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { fuzzDecoder, mutate, prng } from '../support/mutate.js';
import { captureFiles, capturedPdus } from '../support/iscsi-captures.js';
import { IscsiTestClient } from '../support/iscsi-client.js';
import { decodePdu, encodePduBuffer, PduReader } from '../../src/wire/iscsi/pdu-framing.js';
import { parsePdu } from '../../src/wire/iscsi/iscsi-pdu.js';
import { decodeTextKeys } from '../../src/wire/iscsi/text-keys.js';
import { decodeCdb } from '../../src/wire/scsi/cdb.js';
import { IscsiOpcode } from '../../src/wire/iscsi/iscsi-constants.js';
import { IscsiServer } from '../../src/services/iscsi/iscsi-server.js';
import { StaticTargetResolver } from '../../src/services/iscsi/static-target-resolver.js';
import { FileStorageDriver } from '../../src/store/file/file-storage-driver.js';
import { Metrics } from '../../src/observe/metrics.js';
import { silentLogger } from '../../src/observe/logger.js';
import { isDisklessError } from '../../src/errors/index.js';

const all = captureFiles().flatMap((f) => capturedPdus(f));
const pdus = all.map((p) => p.bytes);
const textSegments = all.map((p) => parsePdu({ bhs: p.bytes.subarray(0, 48), ahs: Buffer.alloc(0), data: p.bytes.subarray(48, 48 + p.bytes.readUIntBE(5, 3)) })).filter((p) => p.opcode === IscsiOpcode.loginRequest || p.opcode === IscsiOpcode.loginResponse || p.opcode === IscsiOpcode.textRequest || p.opcode === IscsiOpcode.textResponse).map((p) => p.data).filter((d) => d.length > 0);
const cdbs = all.filter((p) => p.fromClient && (p.bytes[0]! & 0x3f) === IscsiOpcode.scsiCommand).map((p) => p.bytes.subarray(32, 48));

test('corpus is real', () => {
  assert.ok(pdus.length > 100, `${pdus.length} PDUs`);
  assert.ok(textSegments.length > 10);
  assert.ok(cdbs.length > 20);
});

test('PDU decoder: 120k mutated and random inputs, with and without digests', () => {
  const r = fuzzDecoder((b) => decodePdu(b), pdus, 100_000, 1);
  const d = fuzzDecoder((b) => decodePdu(b, { header: true, data: true }), pdus, 20_000, 2);
  assert.ok(r.accepted > 1000 && r.rejected > 1000, JSON.stringify(r));
  assert.ok(d.inputs === 20_000);
});

test('incremental reader: 100k mutated streams split at random points', () => {
  const rand = prng(3);
  const r = fuzzDecoder(
    (b) => {
      const reader = new PduReader({ maxDataSegmentLength: 65536 });
      const cut = Math.floor(rand() * (b.length + 1));
      for (const raw of [...reader.push(b.subarray(0, cut)), ...reader.push(b.subarray(cut))]) parsePdu(raw);
    },
    pdus.map((p, i) => Buffer.concat([p, pdus[(i + 1) % pdus.length]!])),
    100_000,
    4,
  );
  assert.equal(r.inputs, 100_000);
});

test('text key codec: 100k inputs', () => {
  const r = fuzzDecoder((b) => decodeTextKeys(b), textSegments, 100_000, 5);
  assert.ok(r.accepted > 1000 && r.rejected > 1000, JSON.stringify(r));
});

test('CDB decoder: 100k inputs', () => {
  const r = fuzzDecoder((b) => decodeCdb(b), cdbs, 100_000, 6);
  assert.ok(r.accepted > 1000, JSON.stringify(r));
});

test('live target: 3000 mutated PDUs over TCP never crash it nor stop it serving', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'di-fuzz-'));
  const store = new FileStorageDriver({ dataDir: dir });
  await store.create('v', { size: 4 * 1024 * 1024 });
  const device = await store.open('v');
  const metrics = new Metrics();
  const target = 'iqn.2026-11.io.diskless:fuzz';
  const server = new IscsiServer({ address: '127.0.0.1', port: 0, log: silentLogger(), metrics, loginTimeoutMs: 2000, targets: new StaticTargetResolver([{ name: target, device, readOnly: false }]) });
  await server.start();
  try {
    const rand = prng(7);
    const clientPdus = all.filter((p) => p.fromClient).map((p) => p.bytes);
    const fullFeature = clientPdus.filter((b) => (b[0]! & 0x3f) !== IscsiOpcode.loginRequest);
    const logins = clientPdus.filter((b) => (b[0]! & 0x3f) === IscsiOpcode.loginRequest);
    let sent = 0;
    let rejects = 0;
    let drops = 0;
    const seen = new Map<number, number>();
    for (let conn = 0; sent < 3000; conn++) {
      const c = await IscsiTestClient.connect(server.port);
      const loggedIn = conn % 5 !== 0 && (await c.login({ target, keys: [['MaxRecvDataSegmentLength', '8192'], ['InitialR2T', 'No'], ['ImmediateData', 'Yes']] })).statusClass === 0;
      const source = loggedIn ? fullFeature : logins;
      for (let i = 0; i < 30 && !c.closed; i++, sent++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 1)); // let the target act on the last one (and maybe drop us)
        const seed = Buffer.from(source[Math.floor(rand() * source.length)]!);
        // Give the seed this session's CmdSN so mutations reach past the CmdSN window check.
        if (loggedIn && (seed[0]! & 0x3f) !== IscsiOpcode.dataOut) seed.writeUInt32BE(c.cmdSN++ >>> 0, 24);
        const m = rand() < 0.2 ? seed : mutate(seed, rand, source);
        c.socket.write(m);
      }
      // Answered with Reject(s), other PDUs, or a dropped connection: either is fine; silence is too (ignored CmdSNs, waiting for data).
      await new Promise((r) => setTimeout(r, 15));
      for (;;) {
        try {
          const p = await c.next(10);
          seen.set(p.opcode, (seen.get(p.opcode) ?? 0) + 1);
          if (p.opcode === IscsiOpcode.reject) rejects++;
        } catch {
          break;
        }
      }
      if (c.closed) drops++;
      c.close();
    }
    assert.equal(metrics.value('diskless_iscsi_dropped_total', { reason: 'internal-error' }), 0, 'no handler threw');
    const answers = [...seen.values()].reduce((a, b) => a + b, 0);
    console.log(`live fuzz: ${sent} PDUs, ${rejects} rejects, ${drops} dropped connections, ${answers} answers`);
    assert.ok(rejects >= 5 && drops > 20 && answers > 100, `rejects ${rejects}, drops ${drops}, answers by opcode ${JSON.stringify([...seen])}`);
    // Still serving: a clean session works.
    const ok = await IscsiTestClient.connect(server.port);
    assert.equal((await ok.login({ target })).statusClass, 0);
    assert.equal((await ok.scsi(Buffer.from('00000000000000', 'hex'))).status, 0);
    ok.close();
    // And garbage that is not iSCSI at all is dropped.
    await new Promise<void>((resolve) => {
      const s = connect(server.port, '127.0.0.1', () => s.write(Buffer.alloc(4096, 0xff)));
      s.on('close', () => resolve());
      s.on('error', () => undefined);
    });
  } finally {
    await server.stop();
    await device.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('decodePdu rejects with DisklessError only (spot check of the harness)', () => {
  const bad = Buffer.from(encodePduBuffer({ opcode: IscsiOpcode.nopIn, lun: 0n, itt: 1, ttt: 1, statSN: 1, expCmdSN: 1, maxCmdSN: 1, data: Buffer.alloc(0) }));
  bad[0] = 0x3e;
  assert.throws(() => decodePdu(bad), (e: unknown) => isDisklessError(e, 'ISCSI_BAD_OPCODE'));
});
