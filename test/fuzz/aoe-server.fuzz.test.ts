/**
 * Feeds the AoE server's receive path 100,000 mutated frames (captured iPXE requests and
 * hand-built requests of every command, mutated, addressed to the target or broadcast, from a
 * few source MACs) and checks that it never throws, answers only with well-formed frames,
 * keeps its saved state valid, and still serves correct data afterwards. The server runs with
 * its real target, a real file device and a real state file; only the raw socket is replaced
 * (its `openSocket` option) by one the test drives, so no frames leave this process.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RawSocket, RawSocketOptions } from '../../src/net/raw-socket.js';
import { Metrics } from '../../src/observe/metrics.js';
import { silentLogger } from '../../src/observe/logger.js';
import { AoeServer } from '../../src/services/aoe/aoe-server.js';
import { FileAoeStateStore } from '../../src/services/aoe/aoe-state-store.js';
import { FileBlockDevice } from '../../src/store/file/file-block-device.js';
import { AOE_ATA_DATA_OFFSET, decodeAoeFrame, encodeAoeFrame } from '../../src/wire/aoe/aoe-frame.js';
import { AOE_VERSION, AoeCommand, AoeFlag } from '../../src/wire/aoe/aoe-header.js';
import { AtaFlag, AtaOpcode, writeAtaHeader } from '../../src/wire/aoe/ata-command.js';
import { encodeMacMaskList, MaskCommand, MaskDirective } from '../../src/wire/aoe/mac-mask-list.js';
import { ConfigCommand, encodeQueryConfig } from '../../src/wire/aoe/query-config.js';
import { encodeReserveRelease, ReserveCommand } from '../../src/wire/aoe/reserve-release.js';
import { aoeCaptureFiles, capturedAoeFrames } from '../support/aoe-captures.js';
import { mutate, prng } from '../support/mutate.js';

const INPUTS = 100_000;
const SERVER_MAC = Buffer.from('020000a0e001', 'hex');
const SOURCES = ['525400000001', '525400000002', 'ffffffffffff'].map((h) => Buffer.from(h, 'hex'));
const SECTORS = 256;

/** A raw socket this test feeds: `deliver` plays a received frame, sends are collected. */
function fakeSocket(sent: Buffer[]): { open: (o: RawSocketOptions) => RawSocket; deliver: (f: Buffer) => void } {
  let handler: ((f: Buffer) => void) | undefined;
  return {
    open: (o) => ({
      ifname: o.ifname,
      ifindex: 7,
      mac: SERVER_MAC,
      mtu: 1500,
      onFrame: (h) => void (handler = h),
      send: (f) => void sent.push(Buffer.from(f)),
      sendMany: (fs) => void fs.forEach((f) => sent.push(Buffer.from(f))),
      close: () => undefined,
    }),
    deliver: (f) => handler!(f),
  };
}

function ata(op: number, lba: number, count: number, flags: number, data = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(12);
  writeAtaHeader({ flags, featureOrError: 0, sectorCount: count, commandOrStatus: op, lba }, b);
  return Buffer.concat([b, data]);
}

function corpus(): Buffer[] {
  const req = (command: number, ...arg: Buffer[]) => encodeAoeFrame(SERVER_MAC, SOURCES[0]!, { version: AOE_VERSION, flags: 0, error: 0, shelf: 4, slot: 2, command, tag: 77 }, ...arg);
  const frames = [
    req(AoeCommand.ata, ata(AtaOpcode.readSectorsExt, 10, 2, AtaFlag.extended)),
    req(AoeCommand.ata, ata(AtaOpcode.writeSectorsExt, 20, 2, AtaFlag.extended | AtaFlag.write, Buffer.alloc(1024, 0x5a))),
    req(AoeCommand.ata, ata(AtaOpcode.identifyDevice, 0, 1, 0)),
    req(AoeCommand.ata, ata(AtaOpcode.flushCacheExt, 0, 0, AtaFlag.extended)),
    ...[0, 1, 2, 3, 4].map((c) => req(AoeCommand.queryConfig, encodeQueryConfig({ bufferCount: 0, firmwareVersion: 0, sectorCount: 0, aoeVersion: 1, command: c, config: Buffer.from('cfg') }))),
    req(AoeCommand.macMaskList, encodeMacMaskList({ command: MaskCommand.edit, error: 0, directives: [{ command: MaskDirective.add, mac: SOURCES[1]! }] })),
    req(AoeCommand.reserveRelease, encodeReserveRelease({ command: ReserveCommand.forceSet, macs: [SOURCES[1]!] })),
  ];
  for (const file of aoeCaptureFiles()) for (const f of capturedAoeFrames(file)) if ((f.bytes[14 + 0]! & AoeFlag.response) === 0) frames.push(f.bytes);
  return frames;
}

test(`AoE server survives ${INPUTS} mutated frames and still serves the right data`, { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aoe-fuzz-'));
  const file = join(dir, 'disk.img');
  const pattern = Buffer.alloc(SECTORS * 512);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7) & 0xff;
  writeFileSync(file, pattern);
  const device = new FileBlockDevice(await open(file, 'r+'), pattern.length, 512, false, 'disk.img', { allocation: null });
  const state = new FileAoeStateStore(join(dir, 'state.json'));
  const sent: Buffer[] = [];
  const sock = fakeSocket(sent);
  const server = new AoeServer({ targets: [{ shelf: 4, slot: 2, device, name: 'disk', interfaces: ['fuzz0'], state }], log: silentLogger(), metrics: new Metrics(), openSocket: sock.open });
  await server.start();
  try {
    const seeds = corpus();
    assert.ok(seeds.length >= 12, `corpus has ${seeds.length} frames`);
    const rand = prng(0xa0e);
    for (let i = 0; i < INPUTS; i++) {
      const frame = mutate(seeds[Math.floor(rand() * seeds.length)]!, rand, seeds);
      if (frame.length >= 12) SOURCES[Math.floor(rand() * SOURCES.length)]!.copy(frame, 6);
      sock.deliver(frame); // must not throw
      if (i % 1000 === 999) await new Promise((r) => setImmediate(r)); // let reads, writes and state saves run
    }
    await new Promise((r) => setTimeout(r, 200));
    for (const f of sent) {
      const d = decodeAoeFrame(f);
      assert.ok((d.header.flags & AoeFlag.response) !== 0, 'every frame sent is an answer');
      assert.ok(f.length >= 60, 'padded to the Ethernet minimum');
    }
    assert.ok(sent.length > 1000, `${sent.length} answers`);
    // the saved state is still valid, and the target still reads what the file holds
    const t = server.target(4, 2)!;
    await server.removeTarget(4, 2); // waits for the target's state saves
    await state.load();
    // the fuzz may have left a mask or reserve list that shuts out SOURCES[0]: start clean
    await state.save({ config: Buffer.alloc(0), mask: [], reserve: [], seededAllow: [] });
    const fresh = await server.addTarget({ shelf: 4, slot: 2, device, name: 'disk', interfaces: ['fuzz0'], state });
    assert.notEqual(fresh, t);
    sent.length = 0;
    sock.deliver(encodeAoeFrame(SERVER_MAC, SOURCES[0]!, { version: AOE_VERSION, flags: 0, error: 0, shelf: 4, slot: 2, command: AoeCommand.ata, tag: 1 }, ata(AtaOpcode.readSectorsExt, 100, 2, AtaFlag.extended)));
    await new Promise((r) => setTimeout(r, 50));
    const answer = sent.find((f) => decodeAoeFrame(f).header.tag === 1)!;
    assert.deepEqual(answer.subarray(AOE_ATA_DATA_OFFSET), readFileSync(file).subarray(100 * 512, 102 * 512));
  } finally {
    await server.stop();
    await device.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
