/**
 * AoeServer on a real veth pair: the server here on one end (root namespace of this process),
 * an initiator host in namespace dn-aoe-<pid> on the other — test/support/raw-peer.ts, a raw
 * socket that sends our hand-built AoE requests and records what comes back. Needs root.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createNamespace, createVethPair, deleteNamespace, ip, ipIn } from '../../lab/netns.js';
import { interfaceInfo } from '../../net/open-raw-socket.js';
import { Metrics } from '../../observe/metrics.js';
import { silentLogger } from '../../observe/logger.js';
import { FileBlockDevice } from '../../store/file/file-block-device.js';
import { startRawPeer, type RawPeer } from '../../../test/support/raw-peer-client.js';
import { BROADCAST_MAC, EtherType } from '../../wire/ethernet/ethernet-frame.js';
import { AOE_VERSION, AoeCommand, AoeFlag, type AoeHeader } from '../../wire/aoe/aoe-header.js';
import { AOE_ATA_DATA_OFFSET, decodeAoeBody, decodeAoeFrame, encodeAoeFrame, type AoeFrame } from '../../wire/aoe/aoe-frame.js';
import { AtaFlag, AtaOpcode, writeAtaHeader } from '../../wire/aoe/ata-command.js';
import { identifySectors } from '../../wire/aoe/identify-device.js';
import { ConfigCommand, encodeQueryConfig } from '../../wire/aoe/query-config.js';
import { AoeServer } from './aoe-server.js';
import { FileAoeStateStore, MemoryAoeStateStore } from './aoe-state-store.js';

const tag = String(process.pid % 100000);
const ns = `dn-aoe-${tag}`;
const local = `dn-ao${tag}`;
const remote = `dn-ai${tag}`;
const SECTORS = 4096;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('AoeServer on a veth pair', { timeout: 120_000 }, () => {
  let peer: RawPeer;
  let peerMac: Buffer;
  let serverMac: Buffer;
  let dir: string;
  let file: string;

  const header = (command: number, t: number, shelf = 5, slot = 1): AoeHeader => ({ version: AOE_VERSION, flags: 0, error: 0, shelf, slot, command, tag: t });
  const ataArg = (op: number, lba: number, count: number, flags: number, data = Buffer.alloc(0)) => {
    const b = Buffer.alloc(12);
    writeAtaHeader({ flags, featureOrError: 0, sectorCount: count, commandOrStatus: op, lba }, b);
    return Buffer.concat([b, data]);
  };
  const send = (dst: Buffer, h: AoeHeader, ...arg: Buffer[]) => peer.request({ op: 'send', hex: encodeAoeFrame(dst, peerMac, h, ...arg).toString('hex') });

  /** Answers meant for the peer (a veth delivers frames for other MACs to its raw socket too). */
  async function answers(min: number, ms = 3000): Promise<AoeFrame[]> {
    const end = Date.now() + ms;
    for (;;) {
      const r = await peer.request({ op: 'received' });
      const frames = (r.frames ?? []).map((h) => decodeAoeFrame(Buffer.from(h, 'hex'))).filter((f) => (f.header.flags & AoeFlag.response) !== 0 && (f.destination.equals(peerMac) || f.destination.equals(BROADCAST_MAC)));
      if (frames.length >= min || Date.now() > end) return frames;
      await sleep(20);
    }
  }

  async function withServer(spec: { allow?: string[]; state?: FileAoeStateStore }, fn: (server: AoeServer, metrics: Metrics) => Promise<void>): Promise<void> {
    const handle = await open(file, 'r+');
    const device = new FileBlockDevice(handle, SECTORS * 512, 512, false, 'disk.img', { allocation: null });
    const metrics = new Metrics();
    const server = new AoeServer({ targets: [{ shelf: 5, slot: 1, device, name: 'disk', interfaces: [local], ...(spec.allow ? { allow: spec.allow } : {}), state: spec.state ?? new MemoryAoeStateStore() }], log: silentLogger(), metrics });
    await peer.request({ op: 'clear' });
    await server.start();
    try {
      await fn(server, metrics);
    } finally {
      await server.stop();
      await device.close();
    }
  }

  before(async () => {
    await deleteNamespace(ns);
    await ip('link', 'del', local).catch(() => undefined);
    await createNamespace(ns);
    await createVethPair(local, remote, undefined, ns);
    peer = await startRawPeer(ns, remote, EtherType.aoe);
    peerMac = Buffer.from(peer.mac, 'hex');
    serverMac = interfaceInfo(local).mac;
    dir = mkdtempSync(join(tmpdir(), 'aoe-server-'));
    file = join(dir, 'disk.img');
    const pattern = Buffer.alloc(SECTORS * 512);
    for (let i = 0; i < pattern.length; i += 4) pattern.writeUInt32BE(i ^ 0x5a5a5a5a, i);
    writeFileSync(file, pattern);
  });

  after(async () => {
    await peer?.stop();
    await deleteNamespace(ns);
    await ip('link', 'del', local).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  test('announces itself, answers broadcast discovery, IDENTIFY, reads and writes over the wire', async () => {
    await withServer({}, async () => {
      const [announce] = await answers(1);
      assert.deepEqual(announce!.destination, BROADCAST_MAC);
      assert.equal(announce!.header.tag, 0);
      assert.equal(announce!.header.shelf, 5);
      await peer.request({ op: 'clear' });
      await send(BROADCAST_MAC, header(AoeCommand.queryConfig, 1, 0xffff, 0xff), encodeQueryConfig({ bufferCount: 0, firmwareVersion: 0, sectorCount: 0, aoeVersion: 1, command: ConfigCommand.read, config: Buffer.alloc(0) }));
      const [qc] = await answers(1);
      assert.deepEqual(qc!.source, serverMac);
      assert.equal(qc!.header.shelf, 5, "a broadcast is answered with the target's own address");
      assert.equal(qc!.header.slot, 1);
      const body = decodeAoeBody(qc!.header.command, qc!.arg);
      assert.ok(body?.command === AoeCommand.queryConfig);
      assert.equal(body.queryConfig.sectorCount, 2, 'MTU 1500 carries 2 sectors');
      assert.equal(body.queryConfig.bufferCount, 64);
      // ATA to the broadcast address is not executed
      await send(BROADCAST_MAC, header(AoeCommand.ata, 2, 0xffff, 0xff), ataArg(AtaOpcode.identifyDevice, 0, 1, 0));
      await send(serverMac, header(AoeCommand.ata, 3), ataArg(AtaOpcode.identifyDevice, 0, 1, 0));
      await send(serverMac, header(AoeCommand.ata, 4), ataArg(AtaOpcode.readSectorsExt, 1000, 2, AtaFlag.extended));
      await send(serverMac, header(AoeCommand.ata, 5), ataArg(AtaOpcode.writeSectorsExt, 2000, 2, AtaFlag.extended | AtaFlag.write, Buffer.alloc(1024, 0xc3)));
      const got = await answers(4);
      assert.deepEqual(got.map((f) => f.header.tag).sort(), [1, 3, 4, 5]);
      const byTag = (t: number) => got.find((f) => f.header.tag === t)!;
      const identify = byTag(3).arg.subarray(12, 12 + 512);
      assert.equal(identifySectors(identify), SECTORS);
      const disk = readFileSync(file);
      assert.deepEqual(byTag(4).arg.subarray(12, 12 + 1024), disk.subarray(1000 * 512, 1002 * 512));
      assert.deepEqual(disk.subarray(2000 * 512, 2002 * 512), Buffer.alloc(1024, 0xc3));
      assert.equal(AOE_ATA_DATA_OFFSET, 36);
    });
  });

  test('a jumbo MTU raises the sectors per frame; a 17-sector read comes back whole', async () => {
    await ip('link', 'set', local, 'mtu', '9000');
    await ipIn(ns, 'link', 'set', remote, 'mtu', '9000');
    try {
      await withServer({}, async () => {
        await answers(1);
        await peer.request({ op: 'clear' });
        await send(serverMac, header(AoeCommand.queryConfig, 1), encodeQueryConfig({ bufferCount: 0, firmwareVersion: 0, sectorCount: 0, aoeVersion: 1, command: ConfigCommand.read, config: Buffer.alloc(0) }));
        await send(serverMac, header(AoeCommand.ata, 2), ataArg(AtaOpcode.readSectorsExt, 7, 17, AtaFlag.extended));
        const got = await answers(2);
        const qc = decodeAoeBody(AoeCommand.queryConfig, got.find((f) => f.header.tag === 1)!.arg);
        assert.ok(qc?.command === AoeCommand.queryConfig);
        assert.equal(qc.queryConfig.sectorCount, 17);
        const read = got.find((f) => f.header.tag === 2)!;
        assert.deepEqual(read.arg.subarray(12), readFileSync(file).subarray(7 * 512, 24 * 512));
      });
    } finally {
      await ip('link', 'set', local, 'mtu', '1500');
      await ipIn(ns, 'link', 'set', remote, 'mtu', '1500');
    }
  });

  test('an initiator not on the mask list gets nothing, not even the announcement; the list survives a restart', async () => {
    const state = new FileAoeStateStore(join(dir, 'e5.1.json'));
    await withServer({ allow: ['02:00:00:00:00:99'], state }, async (_server, metrics) => {
      await sleep(200);
      await send(BROADCAST_MAC, header(AoeCommand.queryConfig, 1, 0xffff, 0xff), encodeQueryConfig({ bufferCount: 0, firmwareVersion: 0, sectorCount: 0, aoeVersion: 1, command: ConfigCommand.read, config: Buffer.alloc(0) }));
      await send(serverMac, header(AoeCommand.ata, 2), ataArg(AtaOpcode.readSectorsExt, 0, 1, AtaFlag.extended));
      assert.equal((await answers(1, 500)).length, 0);
      assert.equal(metrics.value('diskless_aoe_dropped_total', { target: 'e5.1', reason: 'masked' }), 2);
    });
    assert.deepEqual((await state.load())?.mask, ['02:00:00:00:00:99']);
  });

  test('malformed and foreign frames are dropped without harm; the server keeps answering', async () => {
    await withServer({}, async (_server, metrics) => {
      await answers(1);
      await peer.request({ op: 'clear' });
      // too short for an AoE header after the Ethernet header (the kernel pads nothing on veth)
      await peer.request({ op: 'send', hex: Buffer.concat([serverMac, peerMac, Buffer.from('88a21000', 'hex')]).toString('hex') });
      // a response frame (R set) and a frame for another shelf: ignored
      const resp = encodeAoeFrame(serverMac, peerMac, { ...header(AoeCommand.ata, 9), flags: AoeFlag.response }, ataArg(AtaOpcode.identifyDevice, 0, 1, 0));
      await peer.request({ op: 'send', hex: resp.toString('hex') });
      await send(serverMac, header(AoeCommand.ata, 10, 6, 1), ataArg(AtaOpcode.identifyDevice, 0, 1, 0));
      await send(serverMac, header(AoeCommand.ata, 11), ataArg(AtaOpcode.identifyDevice, 0, 1, 0));
      const got = await answers(1);
      await sleep(100);
      assert.deepEqual((await answers(1)).map((f) => f.header.tag), [11]);
      assert.equal(got[0]!.header.tag, 11);
      assert.equal(metrics.total('diskless_aoe_malformed_frames_total'), 1);
    });
  });
});
