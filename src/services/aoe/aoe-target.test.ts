import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metrics } from '../../observe/metrics.js';
import { silentLogger } from '../../observe/logger.js';
import { FileBlockDevice } from '../../store/file/file-block-device.js';
import { AOE_VERSION, AoeCommand, AoeError, AoeFlag, type AoeHeader } from '../../wire/aoe/aoe-header.js';
import { AOE_ATA_DATA_OFFSET, decodeAoeBody, decodeAoeFrame, encodeAoeFrame, type AoeFrame } from '../../wire/aoe/aoe-frame.js';
import { AtaErrorBit, AtaFlag, AtaOpcode, AtaStatus, writeAtaHeader } from '../../wire/aoe/ata-command.js';
import { identifySectors, identifyString } from '../../wire/aoe/identify-device.js';
import { MaskCommand, MaskDirective, MaskError, encodeMacMaskList } from '../../wire/aoe/mac-mask-list.js';
import { ConfigCommand, encodeQueryConfig } from '../../wire/aoe/query-config.js';
import { ReserveCommand, encodeReserveRelease } from '../../wire/aoe/reserve-release.js';
import { macToBuffer } from '../../wire/ethernet/ethernet-frame.js';
import { AoeTarget, AoeMetric } from './aoe-target.js';
import type { AoeLink } from './aoe-link.js';
import { FileAoeStateStore, MemoryAoeStateStore, type AoeStateStore } from './aoe-state-store.js';

const A = '52:54:00:00:00:0a';
const B = '52:54:00:00:00:0b';
const SERVER = macToBuffer('02:00:00:00:00:01');
const SECTORS = 2048; // 1 MiB

interface Rig {
  readonly target: AoeTarget;
  readonly sent: Buffer[];
  readonly link: AoeLink;
  readonly file: string;
  readonly metrics: Metrics;
  readonly device: FileBlockDevice;
  done(): Promise<void>;
}

async function rig(opts: { blockSize?: number; readOnly?: boolean; allow?: string[]; state?: AoeStateStore; bufferCount?: number; maxSectors?: number; dir?: string } = {}): Promise<Rig> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'aoe-target-'));
  const file = join(dir, 'disk.img');
  const pattern = Buffer.alloc(SECTORS * 512);
  for (let i = 0; i < pattern.length; i += 4) pattern.writeUInt32BE(i / 4, i);
  writeFileSync(file, pattern);
  const handle = await open(file, opts.readOnly ? 'r' : 'r+');
  const device = new FileBlockDevice(handle, pattern.length, opts.blockSize ?? 512, opts.readOnly ?? false, 'disk.img', { allocation: null });
  const sent: Buffer[] = [];
  const link: AoeLink = { ifname: 'test0', mac: SERVER, maxSectors: opts.maxSectors ?? 2, send: (f) => void sent.push(Buffer.from(f)) };
  const metrics = new Metrics();
  const target = new AoeTarget({ shelf: 7, slot: 3, device, name: 'disk', ...(opts.allow ? { allow: opts.allow } : {}), bufferCount: opts.bufferCount ?? 16, state: opts.state ?? new MemoryAoeStateStore(), firmwareVersion: 1, log: silentLogger(), metrics });
  await target.open();
  return {
    target, sent, link, file, metrics, device,
    async done() {
      await target.close();
      await device.close();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

function header(command: number, tag: number, extra: Partial<AoeHeader> = {}): AoeHeader {
  return { version: AOE_VERSION, flags: 0, error: 0, shelf: 7, slot: 3, command, tag, ...extra };
}

function request(from: string, h: AoeHeader, ...arg: Buffer[]): AoeFrame {
  return decodeAoeFrame(encodeAoeFrame(SERVER, macToBuffer(from), h, ...arg));
}

function ata(op: number, lba: number, count: number, flags: number, data = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(12);
  writeAtaHeader({ flags, featureOrError: 0, sectorCount: count, commandOrStatus: op, lba }, b);
  return Buffer.concat([b, data]);
}

const settle = () => new Promise((r) => setTimeout(r, 30));

function answer(r: Rig, i = r.sent.length - 1) {
  const f = decodeAoeFrame(r.sent[i]!);
  return { f, body: (f.header.flags & AoeFlag.error) === 0 ? decodeAoeBody(f.header.command, f.arg) : undefined };
}

test('IDENTIFY DEVICE: capacity, strings, answered to the sender from the link MAC', async () => {
  const r = await rig();
  // A Query Config whose string length claims more than the frame holds: bad argument
  const short = encodeQueryConfig({ bufferCount: 0, firmwareVersion: 0, sectorCount: 0, aoeVersion: 1, command: ConfigCommand.forceSet, config: Buffer.from('x') });
  short.writeUInt16BE(1000, 6);
  r.target.handle(request(A, header(AoeCommand.queryConfig, 11), short), r.link);
  assert.equal(answer(r).f.header.error, AoeError.badArgument);
  assert.equal(r.target.configString.length, 0);
  r.target.handle(request(A, header(AoeCommand.ata, 12), ata(AtaOpcode.identifyDevice, 0, 1, 0)), r.link);
  const { f } = answer(r);
  assert.equal(f.header.flags, AoeFlag.response);
  assert.equal(f.header.tag, 12);
  assert.deepEqual(f.destination, macToBuffer(A));
  assert.deepEqual(f.source, SERVER);
  const data = r.sent.at(-1)!.subarray(AOE_ATA_DATA_OFFSET, AOE_ATA_DATA_OFFSET + 512);
  assert.equal(identifySectors(data), SECTORS);
  assert.equal(identifyString(data, 10, 20), '7.3:disk');
  assert.equal(identifyString(data, 27, 40), 'diskless AoE target');
  await r.done();
});

test('READ and WRITE SECTORS (EXT): data from and to the device; 28-bit LBA masked; limits and end of device', async () => {
  const r = await rig();
  const file = readFileSync(r.file);
  r.target.handle(request(A, header(AoeCommand.ata, 1), ata(AtaOpcode.readSectorsExt, 100, 2, AtaFlag.extended)), r.link);
  await settle();
  let out = r.sent.at(-1)!;
  assert.equal(out.length, AOE_ATA_DATA_OFFSET + 1024);
  assert.deepEqual(out.subarray(AOE_ATA_DATA_OFFSET), file.subarray(100 * 512, 102 * 512));
  assert.equal(out[AOE_ATA_DATA_OFFSET - 9], AtaStatus.ready);
  // 28-bit command: the high nibble of LBA3 (0xe0: LBA mode, device 0) is not address
  r.target.handle(request(A, header(AoeCommand.ata, 2), ata(AtaOpcode.readSectors, 0xe0000000 + 5, 1, 0)), r.link);
  await settle();
  out = r.sent.at(-1)!;
  assert.deepEqual(out.subarray(AOE_ATA_DATA_OFFSET, AOE_ATA_DATA_OFFSET + 512), file.subarray(5 * 512, 6 * 512));
  const data = Buffer.alloc(1024, 0x5a);
  r.target.handle(request(A, header(AoeCommand.ata, 3), ata(AtaOpcode.writeSectorsExt, 300, 2, AtaFlag.extended | AtaFlag.write, data)), r.link);
  await settle();
  assert.equal(r.sent.at(-1)!.length, 60, 'answers are padded to the Ethernet minimum');
  assert.deepEqual(readFileSync(r.file).subarray(300 * 512, 302 * 512), data);
  // 3 sectors on a 2-sector link: AoE bad argument; past the end: ATA IDNF; ext opcode without E: bad argument
  r.target.handle(request(A, header(AoeCommand.ata, 4), ata(AtaOpcode.readSectorsExt, 0, 3, AtaFlag.extended)), r.link);
  assert.equal(answer(r).f.header.error, AoeError.badArgument);
  r.target.handle(request(A, header(AoeCommand.ata, 5), ata(AtaOpcode.readSectorsExt, SECTORS - 1, 2, AtaFlag.extended)), r.link);
  out = r.sent.at(-1)!;
  assert.equal(out[24 + 3], AtaStatus.ready | AtaStatus.error);
  assert.equal(out[24 + 1], AtaErrorBit.idNotFound);
  r.target.handle(request(A, header(AoeCommand.ata, 6), ata(AtaOpcode.readSectorsExt, 0, 1, 0)), r.link);
  assert.equal(answer(r).f.header.error, AoeError.badArgument);
  // a write carrying less data than its count
  r.target.handle(request(A, header(AoeCommand.ata, 7), ata(AtaOpcode.writeSectorsExt, 0, 2, AtaFlag.extended | AtaFlag.write, Buffer.alloc(512))), r.link);
  assert.equal(answer(r).f.header.error, AoeError.badArgument);
  // unknown ATA opcode: ATA abort; CHECK POWER MODE: active; FLUSH CACHE: ready
  r.target.handle(request(A, header(AoeCommand.ata, 8), ata(0x99, 0, 0, 0)), r.link);
  assert.equal(r.sent.at(-1)![24 + 1], AtaErrorBit.aborted);
  r.target.handle(request(A, header(AoeCommand.ata, 9), ata(AtaOpcode.checkPowerMode, 0, 0, 0)), r.link);
  assert.equal(r.sent.at(-1)![24 + 2], 0xff);
  r.target.handle(request(A, header(AoeCommand.ata, 10), ata(AtaOpcode.flushCacheExt, 0, 0, AtaFlag.extended)), r.link);
  await settle();
  assert.equal(r.sent.at(-1)![24 + 3], AtaStatus.ready);
  assert.equal(r.metrics.value(AoeMetric.bytesWritten, { target: 'e7.3' }), 1024);
  await r.done();
});

test('a read-only target aborts writes and leaves the file alone', async () => {
  const r = await rig({ readOnly: true });
  const before = readFileSync(r.file);
  r.target.handle(request(A, header(AoeCommand.ata, 1), ata(AtaOpcode.writeSectorsExt, 0, 1, AtaFlag.extended | AtaFlag.write, Buffer.alloc(512, 1))), r.link);
  await settle();
  assert.equal(r.sent.at(-1)![24 + 3], AtaStatus.ready | AtaStatus.error);
  assert.equal(r.sent.at(-1)![24 + 1], AtaErrorBit.aborted);
  assert.deepEqual(readFileSync(r.file), before);
  await r.done();
});

test('a retransmitted write is answered again, not executed again; the same tag with other data is a new write', async () => {
  const r = await rig();
  const w = (tag: number, fill: number) => request(A, header(AoeCommand.ata, tag), ata(AtaOpcode.writeSectorsExt, 40, 1, AtaFlag.extended | AtaFlag.write, Buffer.alloc(512, fill)));
  r.target.handle(w(77, 1), r.link);
  r.target.handle(w(77, 1), r.link); // still running: dropped, one answer comes
  await settle();
  assert.equal(r.sent.length, 1);
  // someone else writes the sector; the retransmit must not write it back
  await r.device.write(40 * 512, Buffer.alloc(512, 9));
  r.target.handle(w(77, 1), r.link);
  await settle();
  assert.equal(r.sent.length, 2);
  assert.deepEqual(r.sent[1], r.sent[0]);
  assert.equal(readFileSync(r.file)[40 * 512], 9);
  assert.equal(r.metrics.value(AoeMetric.replayed, { target: 'e7.3' }), 1);
  r.target.handle(w(77, 2), r.link);
  await settle();
  assert.equal(readFileSync(r.file)[40 * 512], 2);
  // another initiator with the same tag is another request
  r.target.handle(request(B, header(AoeCommand.ata, 77), ata(AtaOpcode.writeSectorsExt, 40, 1, AtaFlag.extended | AtaFlag.write, Buffer.alloc(512, 1))), r.link);
  await settle();
  assert.equal(readFileSync(r.file)[40 * 512], 1);
  await r.done();
});

test('more requests than buffers: the excess is dropped and counted', async () => {
  const r = await rig({ bufferCount: 2 });
  for (let t = 0; t < 5; t++) r.target.handle(request(A, header(AoeCommand.ata, t), ata(AtaOpcode.readSectorsExt, t, 1, AtaFlag.extended)), r.link);
  await settle();
  assert.equal(r.sent.length, 2);
  assert.equal(r.metrics.value(AoeMetric.dropped, { target: 'e7.3', reason: 'buffers-full' }), 3);
  await r.done();
});

test('Query Config: read, set if empty, exact and prefix tests, force set; saved and loaded again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aoe-qc-'));
  const state = new FileAoeStateStore(join(dir, 'e7.3.json'));
  const r = await rig({ state, dir });
  const qc = (tag: number, command: number, text: string) => request(A, header(AoeCommand.queryConfig, tag), encodeQueryConfig({ bufferCount: 0, firmwareVersion: 0, sectorCount: 0, aoeVersion: 0, command, config: Buffer.from(text) }));
  r.target.handle(qc(1, ConfigCommand.read, ''), r.link);
  let a = answer(r);
  assert.ok(a.body?.command === AoeCommand.queryConfig);
  assert.equal(a.body.queryConfig.bufferCount, 16);
  assert.equal(a.body.queryConfig.sectorCount, 2);
  assert.equal(a.body.queryConfig.aoeVersion, 1);
  assert.equal(a.body.queryConfig.config.length, 0);
  r.target.handle(qc(2, ConfigCommand.setIfEmpty, 'node-17'), r.link);
  await settle();
  a = answer(r);
  assert.ok(a.body?.command === AoeCommand.queryConfig);
  assert.equal(a.body.queryConfig.config.toString(), 'node-17');
  r.target.handle(qc(3, ConfigCommand.setIfEmpty, 'node-18'), r.link);
  await settle();
  assert.equal(answer(r).f.header.error, AoeError.configStringPresent);
  const n = r.sent.length;
  r.target.handle(qc(4, ConfigCommand.testExact, 'node-1'), r.link);
  r.target.handle(qc(5, ConfigCommand.testPrefix, 'node-2'), r.link);
  assert.equal(r.sent.length, n, 'a test that does not match stays silent');
  r.target.handle(qc(6, ConfigCommand.testPrefix, 'node-1'), r.link);
  r.target.handle(qc(7, ConfigCommand.testExact, 'node-17'), r.link);
  assert.equal(r.sent.length, n + 2);
  r.target.handle(qc(8, 9, ''), r.link);
  assert.equal(answer(r).f.header.error, AoeError.badArgument);
  r.target.handle(qc(9, ConfigCommand.forceSet, 'rack-2'), r.link);
  await settle();
  await r.done();
  assert.equal((await state.load())?.config.toString(), 'rack-2');
  rmSync(dir, { recursive: true, force: true });
});

test('Mac Mask List: edits are all-or-nothing, persisted, and a non-empty list silences everyone else', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aoe-mask-'));
  const state = new FileAoeStateStore(join(dir, 'e7.3.json'));
  const r = await rig({ state, dir });
  const edit = (tag: number, from: string, ...d: Array<[number, string]>) => request(from, header(AoeCommand.macMaskList, tag), encodeMacMaskList({ command: MaskCommand.edit, error: 0, directives: d.map(([command, mac]) => ({ command, mac: macToBuffer(mac) })) }));
  r.target.handle(edit(1, A, [MaskDirective.add, A], [7, B]), r.link);
  await settle();
  let a = answer(r);
  assert.ok(a.body?.command === AoeCommand.macMaskList);
  assert.equal(a.body.macMaskList.error, MaskError.badDirective);
  assert.equal(a.body.macMaskList.count, 1, 'the index of the bad directive');
  assert.deepEqual(r.target.maskList, [], 'nothing applied');
  r.target.handle(edit(2, A, [MaskDirective.add, A], [MaskDirective.add, B], [MaskDirective.delete, B]), r.link);
  await settle();
  a = answer(r);
  assert.ok(a.body?.command === AoeCommand.macMaskList);
  assert.equal(a.body.macMaskList.error, MaskError.none);
  assert.deepEqual(a.body.macMaskList.directives.map((d) => d.mac.toString('hex')), ['52540000000a']);
  const n = r.sent.length;
  r.target.handle(request(B, header(AoeCommand.ata, 3), ata(AtaOpcode.identifyDevice, 0, 1, 0)), r.link);
  r.target.handle(request(B, header(AoeCommand.macMaskList, 4), encodeMacMaskList({ command: MaskCommand.read, error: 0, directives: [] })), r.link);
  assert.equal(r.sent.length, n, 'B is not on the list: no answer at all');
  assert.equal(r.metrics.value(AoeMetric.dropped, { target: 'e7.3', reason: 'masked' }), 2);
  await r.done();
  assert.deepEqual((await state.load())?.mask, [A]);
  // a restart keeps the edit; a changed configured allow list wins over it
  const again = await rig({ state, dir });
  assert.deepEqual(again.target.maskList, [A]);
  await again.done();
  const reseeded = await rig({ state, dir, allow: [B.toUpperCase()] });
  assert.deepEqual(reseeded.target.maskList, [B]);
  await reseeded.done();
  rmSync(dir, { recursive: true, force: true });
});

test('Reserve/Release: only reserved initiators send ATA (IDENTIFY excepted) or set; force set works for anyone', async () => {
  const r = await rig();
  const rr = (tag: number, from: string, command: number, ...macs: string[]) => request(from, header(AoeCommand.reserveRelease, tag), encodeReserveRelease({ command, macs: macs.map(macToBuffer) }));
  r.target.handle(rr(1, A, ReserveCommand.set, A), r.link);
  await settle();
  let a = answer(r);
  assert.ok(a.body?.command === AoeCommand.reserveRelease);
  assert.deepEqual(a.body.reserveRelease.macs.map((m) => m.toString('hex')), ['52540000000a']);
  r.target.handle(request(B, header(AoeCommand.ata, 2), ata(AtaOpcode.readSectorsExt, 0, 1, AtaFlag.extended)), r.link);
  assert.equal(answer(r).f.header.error, AoeError.targetReserved);
  r.target.handle(request(B, header(AoeCommand.ata, 3), ata(AtaOpcode.identifyDevice, 0, 1, 0)), r.link);
  assert.equal(answer(r).f.header.error, 0);
  r.target.handle(rr(4, B, ReserveCommand.set, B), r.link);
  await settle();
  assert.equal(answer(r).f.header.error, AoeError.targetReserved);
  r.target.handle(rr(5, B, ReserveCommand.read), r.link);
  a = answer(r);
  assert.ok(a.body?.command === AoeCommand.reserveRelease);
  assert.equal(a.body.reserveRelease.macs.length, 1);
  r.target.handle(rr(6, B, ReserveCommand.forceSet), r.link);
  await settle();
  assert.deepEqual(r.target.reserveList, []);
  r.target.handle(request(B, header(AoeCommand.ata, 7), ata(AtaOpcode.readSectorsExt, 0, 1, AtaFlag.extended)), r.link);
  await settle();
  assert.equal(answer(r).f.header.error, 0);
  r.target.handle(rr(8, B, 5), r.link);
  await settle();
  assert.equal(answer(r).f.header.error, AoeError.badArgument);
  await r.done();
});

test('version other than 1: error 5; unknown command: error 1', async () => {
  const r = await rig();
  r.target.handle(request(A, header(AoeCommand.ata, 1, { version: 2 }), ata(AtaOpcode.identifyDevice, 0, 1, 0)), r.link);
  assert.equal(answer(r).f.header.error, AoeError.unsupportedVersion);
  r.target.handle(request(A, header(9, 2)), r.link);
  assert.equal(answer(r).f.header.error, AoeError.unrecognizedCommand);
  assert.equal(answer(r).f.header.flags, AoeFlag.response | AoeFlag.error);
  await r.done();
});

test('a 4096-byte-block device: unaligned sector reads and concurrent partial writes to one block all land', async () => {
  const r = await rig({ blockSize: 4096, maxSectors: 17 });
  const file = readFileSync(r.file);
  r.target.handle(request(A, header(AoeCommand.ata, 1), ata(AtaOpcode.readSectorsExt, 7, 3, AtaFlag.extended)), r.link);
  await settle();
  assert.deepEqual(r.sent.at(-1)!.subarray(AOE_ATA_DATA_OFFSET), file.subarray(7 * 512, 10 * 512));
  for (let s = 0; s < 8; s++) r.target.handle(request(A, header(AoeCommand.ata, 10 + s), ata(AtaOpcode.writeSectorsExt, 16 + s, 1, AtaFlag.extended | AtaFlag.write, Buffer.alloc(512, 0x30 + s))), r.link);
  await new Promise((res) => setTimeout(res, 100));
  const now = readFileSync(r.file);
  for (let s = 0; s < 8; s++) assert.equal(now[(16 + s) * 512], 0x30 + s, `sector ${16 + s}`);
  await r.done();
});

test('mask, config and reserve requests in flight together each decide from the state the one before left (no lost update)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aoe-race-'));
  const state = new FileAoeStateStore(join(dir, 'e7.3.json'));
  const r = await rig({ state, dir });
  const edit = (tag: number, mac: string) => request(A, header(AoeCommand.macMaskList, tag), encodeMacMaskList({ command: MaskCommand.edit, error: 0, directives: [{ command: MaskDirective.add, mac: macToBuffer(mac) }] }));
  // All handled in one turn: every save is still running when the next request arrives.
  r.target.handle(edit(1, A), r.link);
  r.target.handle(edit(2, B), r.link);
  r.target.handle(request(A, header(AoeCommand.queryConfig, 3), encodeQueryConfig({ bufferCount: 0, firmwareVersion: 0, sectorCount: 0, aoeVersion: 0, command: ConfigCommand.forceSet, config: Buffer.from('rack 4') })), r.link);
  r.target.handle(request(A, header(AoeCommand.reserveRelease, 4), encodeReserveRelease({ command: ReserveCommand.set, macs: [macToBuffer(A)] })), r.link);
  await settle();
  assert.equal(r.sent.length, 4, 'every request answered');
  r.target.handle(request(A, header(AoeCommand.macMaskList, 5), encodeMacMaskList({ command: MaskCommand.read, error: 0, directives: [] })), r.link);
  assert.deepEqual(r.target.maskList, [A, B], 'both edits');
  assert.equal(r.target.configString.toString(), 'rack 4');
  assert.deepEqual(r.target.reserveList, [A]);
  const read = answer(r);
  assert.ok(read.body?.command === AoeCommand.macMaskList);
  assert.deepEqual(read.body.macMaskList.directives.map((d) => d.mac.toString('hex')), ['52540000000a', '52540000000b'], 'a read after the edits sees them');
  await r.done();
  const saved = await state.load();
  assert.deepEqual([saved?.mask, saved?.config.toString(), saved?.reserve], [[A, B], 'rack 4', [A]]);
  rmSync(dir, { recursive: true, force: true });
});

test('reseed: a new configured allow list replaces the mask list (saved); the same list again leaves edits made over AoE alone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aoe-reseed-'));
  const state = new FileAoeStateStore(join(dir, 'e7.3.json'));
  const r = await rig({ state, dir, allow: [A] });
  r.target.handle(request(A, header(AoeCommand.macMaskList, 1), encodeMacMaskList({ command: MaskCommand.edit, error: 0, directives: [{ command: MaskDirective.add, mac: macToBuffer(B) }] })), r.link);
  await r.target.reseed([A.toUpperCase()]);
  assert.deepEqual(r.target.maskList, [A, B], 'the configured list did not change: the edit stands');
  await r.target.reseed([B, B]);
  assert.deepEqual(r.target.maskList, [B]);
  assert.deepEqual((await state.load())?.mask, [B]);
  assert.deepEqual((await state.load())?.seededAllow, [B]);
  await r.done();
  rmSync(dir, { recursive: true, force: true });
});
