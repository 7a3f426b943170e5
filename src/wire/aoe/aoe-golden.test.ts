/**
 * Golden tests from real AoE traffic captured in the lab (test/support/aoe-capture.ts; see
 * testdata/README.md): iPXE sanbooting from vblade, and vblade answering hand-built requests of
 * every command. Every frame decodes and re-encodes byte for byte; each capture's readable dump
 * is compared with the checked-in `<capture>.txt` (regenerate with UPDATE_GOLDEN=1); and the
 * facts the peers showed are asserted one by one (docs/aoe.md, "Protocol notes").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AOE_TESTDATA,
  aoeCaptureFiles,
  CAPTURE_CONFIG,
  capturedAoeFrames,
  COMMANDS_TAG_BASE,
  COMMANDS_TARGET,
  formatAoeFrame,
  SPOOFED_MAC,
} from '../../../test/support/aoe-captures.js';
import { AOE_ARG_OFFSET, AOE_OFFSET, decodeAoeBody, decodeAoeFrame, encodeAoeFrame, MIN_FRAME_LENGTH, type AoeBody, type AoeFrame } from './aoe-frame.js';
import { AOE_HEADER_LENGTH, AoeCommand, AoeError, AoeFlag, writeAoeHeader } from './aoe-header.js';
import { ATA_HEADER_LENGTH, AtaErrorBit, AtaFlag, AtaOpcode, AtaStatus, effectiveLba, POWER_MODE_ACTIVE, SECTOR_SIZE, writeAtaHeader, type AtaArg } from './ata-command.js';
import { identifySectors, identifyString } from './identify-device.js';
import { encodeMacMaskList, MaskDirective, MaskError, type MacMaskList } from './mac-mask-list.js';
import { ConfigCommand, encodeQueryConfig, QUERY_CONFIG_LENGTH, type QueryConfig } from './query-config.js';
import { encodeReserveRelease, type ReserveRelease } from './reserve-release.js';

interface Decoded {
  readonly index: number;
  readonly bytes: Buffer;
  readonly frame: AoeFrame;
  readonly body: AoeBody | undefined;
}

function decodeCapture(file: string): Decoded[] {
  return capturedAoeFrames(file).map(({ index, bytes }) => {
    const frame = decodeAoeFrame(bytes);
    return { index, bytes, frame, body: decodeAoeBody(frame.header.command, frame.arg) };
  });
}

const isResponse = (d: Decoded): boolean => (d.frame.header.flags & AoeFlag.response) !== 0;
const macHex = (b: Buffer): string => b.toString('hex');
const BROADCAST_MAC = 'ffffffffffff';
/** The captures served the smallest demo disk (src/store/demo-disk.ts DEMO_DISK_MIN_SIZE, 9 MiB). */
const DISK_SECTORS = 18432;

/** The demo disk's MBR: boot code `xor ax,ax; mov ds,ax`, the marker it prints, 55 AA. */
function assertDemoMbr(sector: Buffer, what: string): void {
  assert.equal(sector.length, SECTOR_SIZE, what);
  assert.deepEqual([...sector.subarray(0, 4)], [0x31, 0xc0, 0x8e, 0xd8], what);
  assert.ok(sector.subarray(0, 446).includes('DISKLESS-OK\r\n\0'), what);
  assert.equal(sector.readUInt16BE(510), 0x55aa, what);
}

function ataOf(d: Decoded | undefined): AtaArg {
  assert.equal(d?.body?.command, AoeCommand.ata, `frame ${d?.index} is ATA`);
  return (d.body as { ata: AtaArg }).ata;
}
function queryConfigOf(d: Decoded | undefined): QueryConfig {
  assert.equal(d?.body?.command, AoeCommand.queryConfig, `frame ${d?.index} is Query Config`);
  return (d.body as { queryConfig: QueryConfig }).queryConfig;
}
function maskListOf(d: Decoded | undefined): MacMaskList {
  assert.equal(d?.body?.command, AoeCommand.macMaskList, `frame ${d?.index} is Mac Mask List`);
  return (d.body as { macMaskList: MacMaskList }).macMaskList;
}
function reserveOf(d: Decoded | undefined): ReserveRelease {
  assert.equal(d?.body?.command, AoeCommand.reserveRelease, `frame ${d?.index} is Reserve/Release`);
  return (d.body as { reserveRelease: ReserveRelease }).reserveRelease;
}

/** The argument parts the encoders produce for a decoded body (the raw argument for an unknown command). */
function encodeArg(d: Decoded): Buffer[] {
  const b = d.body;
  if (b === undefined) return [d.frame.arg];
  switch (b.command) {
    case AoeCommand.ata: {
      const header = Buffer.alloc(ATA_HEADER_LENGTH);
      writeAtaHeader(b.ata, header);
      return [header, b.ata.data];
    }
    case AoeCommand.queryConfig:
      return [encodeQueryConfig(b.queryConfig)];
    case AoeCommand.macMaskList:
      return [encodeMacMaskList(b.macMaskList)];
    case AoeCommand.reserveRelease:
      return [encodeReserveRelease(b.reserveRelease)];
  }
}

const CAPTURES = aoeCaptureFiles();

test('the AoE testdata holds both captures', () => {
  assert.deepEqual(CAPTURES, ['ipxe-sanboot.pcap', 'vblade-commands.pcap']);
});

for (const file of CAPTURES) {
  test(`every frame of ${file} decodes: header, then the argument of its command`, () => {
    const frames = decodeCapture(file);
    assert.ok(frames.length >= 10, `${file} holds ${frames.length} frames`);
    for (const d of frames) {
      assert.equal(d.frame.header.command === 5 || d.body !== undefined, true, `frame ${d.index}: command ${d.frame.header.command}`);
    }
  });

  test(`golden dump of ${file}`, () => {
    const dump = capturedAoeFrames(file).map(({ index, bytes }) => `#${index} ${formatAoeFrame(bytes)}`).join('\n') + '\n';
    const golden = join(AOE_TESTDATA, file.replace(/\.pcap$/, '.txt'));
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, dump);
    assert.equal(dump, readFileSync(golden, 'utf8'));
  });

  test(`decode -> encode of ${file} gives every frame back byte for byte`, () => {
    for (const d of decodeCapture(file)) {
      const header = Buffer.alloc(AOE_HEADER_LENGTH);
      writeAoeHeader(d.frame.header, header);
      assert.deepEqual(header, d.bytes.subarray(AOE_OFFSET, AOE_ARG_OFFSET), `frame ${d.index}: AoE header`);
      const again = encodeAoeFrame(d.frame.destination, d.frame.source, d.frame.header, ...encodeArg(d));
      // The peers do not pad their short frames to 60 bytes (they leave that to the NIC): ours come back zero-padded.
      assert.equal(again.length, Math.max(MIN_FRAME_LENGTH, d.bytes.length), `frame ${d.index}: length`);
      assert.deepEqual(again.subarray(0, d.bytes.length), d.bytes, `frame ${d.index}: bytes`);
      assert.ok(again.subarray(d.bytes.length).every((x) => x === 0), `frame ${d.index}: padding`);
    }
  });
}

// ---- iPXE (QEMU e1000 ROM, 1.0.0+git-20190125) sanbooting e1.1 from vblade 25 ----

const sanboot = (): Decoded[] => decodeCapture('ipxe-sanboot.pcap');

test('ipxe-sanboot: vblade announces itself at start: broadcast Query Config response, Ver 0, tag 0, unpadded', () => {
  const first = sanboot()[0]!;
  assert.equal(macHex(first.frame.destination), BROADCAST_MAC);
  assert.deepEqual(first.frame.header, { version: 0, flags: AoeFlag.response, error: 0, shelf: 1, slot: 1, command: AoeCommand.queryConfig, tag: 0 });
  const qc = queryConfigOf(first);
  assert.deepEqual({ ...qc, config: qc.config.length }, { bufferCount: 16, firmwareVersion: 0x4019, sectorCount: 2, aoeVersion: 1, command: ConfigCommand.read, config: 0 });
  assert.equal(first.bytes.length, AOE_ARG_OFFSET + QUERY_CONFIG_LENGTH, 'vblade sends 32 bytes');
});

test('ipxe-sanboot: iPXE broadcasts Query Config read to its target e1.1 (not to ffff.ff), and vblade answers it unicast', () => {
  const frames = sanboot();
  const query = frames.find((d) => !isResponse(d))!;
  assert.equal(macHex(query.frame.destination), BROADCAST_MAC);
  assert.deepEqual(query.frame.header, { version: 1, flags: 0, error: 0, shelf: 1, slot: 1, command: AoeCommand.queryConfig, tag: 0x18ae0001 });
  assert.ok(query.frame.arg.equals(Buffer.alloc(QUERY_CONFIG_LENGTH)), 'an all-zero argument: CCmd read, no string');
  assert.equal(query.bytes.length, 32, 'iPXE does not pad to 60 bytes either');
  const answer = frames.find((d) => isResponse(d) && d.frame.header.tag === query.frame.header.tag)!;
  assert.equal(macHex(answer.frame.destination), macHex(query.frame.source));
  assert.deepEqual(answer.frame.header, { ...query.frame.header, flags: AoeFlag.response });
  assert.equal(queryConfigOf(answer).sectorCount, 2, 'vblade: (MTU 1500 - 36) / 512 sectors per command');
  // The request re-encodes from its fields with the encoders.
  const again = encodeAoeFrame(query.frame.destination, query.frame.source, query.frame.header, encodeQueryConfig(queryConfigOf(query)));
  assert.deepEqual(again.subarray(0, query.bytes.length), query.bytes);
});

test('ipxe-sanboot: iPXE tags are 0x18ae0000 + a counter, one per command, each answered once: no retransmission', () => {
  const frames = sanboot().slice(1);
  const requests = frames.filter((d) => !isResponse(d));
  assert.deepEqual(requests.map((d) => d.frame.header.tag), requests.map((_, i) => 0x18ae0001 + i));
  for (const r of requests) {
    const answers = frames.filter((d) => isResponse(d) && d.frame.header.tag === r.frame.header.tag);
    assert.equal(answers.length, 1, `tag ${r.frame.header.tag.toString(16)}`);
    assert.equal(answers[0]!.index, r.index + 1, 'the answer follows its request');
  }
});

test('ipxe-sanboot: IDENTIFY DEVICE is a non-extended command whose LBA3 carries device bits 0xe0; vblade reports the disk size', () => {
  const frames = sanboot();
  const request = frames.find((d) => !isResponse(d) && d.body?.command === AoeCommand.ata && ataOf(d).commandOrStatus === AtaOpcode.identifyDevice)!;
  const ata = ataOf(request);
  assert.deepEqual({ ...ata, data: ata.data.length }, { flags: 0, featureOrError: 0, sectorCount: 1, commandOrStatus: AtaOpcode.identifyDevice, lba: 0xe0000000, data: 0 });
  assert.equal(effectiveLba(ata), 0);
  const answer = ataOf(frames[request.index + 1]);
  assert.equal(answer.commandOrStatus, AtaStatus.ready);
  assert.equal(answer.sectorCount, 0, 'vblade answers with the sectors left to do');
  assert.equal(answer.data.length, SECTOR_SIZE);
  assert.equal(identifySectors(answer.data), DISK_SECTORS);
  assert.equal(answer.data.readUInt16LE(83 * 2) & 0x0400, 0x0400, 'LBA48 supported');
  assert.equal(identifyString(answer.data, 27, 40), 'Coraid EtherDrive vblade');
  assert.equal(identifyString(answer.data, 23, 8), 'V25');
  assert.match(identifyString(answer.data, 10, 20), /^1\.1:/, 'serial: shelf.slot:hostname');
  assert.equal(answer.data[510], 0, 'no integrity word (vblade leaves word 255 zero)');
});

test('ipxe-sanboot: iPXE then reads with READ SECTORS EXT, E flag, at most 2 sectors per request; each answer carries count × 512 bytes', () => {
  const frames = sanboot();
  const reads = frames.filter((d) => !isResponse(d) && d.body?.command === AoeCommand.ata && ataOf(d).commandOrStatus !== AtaOpcode.identifyDevice);
  assert.deepEqual(
    reads.map((d) => [ataOf(d).commandOrStatus, ataOf(d).flags, ataOf(d).sectorCount, ataOf(d).lba]),
    [
      [AtaOpcode.readSectorsExt, AtaFlag.extended, 2, 64], // 2 KiB at 32 KiB: the ISO9660 volume descriptor
      [AtaOpcode.readSectorsExt, AtaFlag.extended, 2, 66],
      [AtaOpcode.readSectorsExt, AtaFlag.extended, 1, 0], // the MBR, for the partition table
      [AtaOpcode.readSectorsExt, AtaFlag.extended, 1, 0], // the MBR again, to boot it
    ],
  );
  for (const r of reads) {
    const req = ataOf(r);
    const answer = ataOf(frames[r.index + 1]);
    assert.equal(answer.data.length, req.sectorCount * SECTOR_SIZE, `frame ${r.index + 1}`);
    assert.deepEqual([answer.flags, answer.sectorCount, answer.commandOrStatus, answer.featureOrError, answer.lba], [req.flags, 0, AtaStatus.ready, 0, req.lba]);
  }
  const mbr = ataOf(frames.at(-1)).data;
  assertDemoMbr(mbr, 'the last answer is the demo disk MBR that prints DISKLESS-OK');
});

// ---- vblade 25 answering hand-built requests (e7.3), request i has tag COMMANDS_TAG_BASE + i ----

function exchanges(): { peer: string; request: (i: number) => Decoded; answer: (i: number) => Decoded | undefined } {
  const frames = decodeCapture('vblade-commands.pcap');
  const request = (i: number) => frames.find((d) => !isResponse(d) && d.frame.header.tag === COMMANDS_TAG_BASE + i)!;
  const answer = (i: number) => frames.find((d) => isResponse(d) && d.frame.header.tag === COMMANDS_TAG_BASE + i);
  return { peer: macHex(request(0).frame.source), request, answer };
}

test('vblade-commands: each request but the non-matching test is answered from e7.3 with R set and the tag echoed', () => {
  const { request, answer } = exchanges();
  for (let i = 0; i < 27; i++) {
    const q = request(i);
    assert.ok(q, `request ${i}`);
    const a = answer(i);
    if (i === 4) {
      assert.equal(a, undefined, 'Query Config test-exact with another string: silence');
      continue;
    }
    assert.ok(a, `answer ${i}`);
    assert.equal(a.frame.header.shelf, COMMANDS_TARGET.shelf);
    assert.equal(a.frame.header.slot, COMMANDS_TARGET.slot);
    assert.equal(a.frame.header.command, q.frame.header.command);
    assert.equal(macHex(a.frame.destination), macHex(q.frame.source));
    assert.ok(a.frame.header.flags & AoeFlag.response);
  }
});

test('vblade-commands: Query Config with each CCmd', () => {
  const { request, answer } = exchanges();
  assert.equal(request(0).frame.header.shelf, 0xffff, 'the first query goes to every shelf and slot');
  assert.equal(request(0).frame.header.slot, 0xff);
  assert.equal(queryConfigOf(answer(0)).config.length, 0, 'no config string yet');
  assert.equal(queryConfigOf(answer(1)).config.toString(), CAPTURE_CONFIG, 'force set');
  assert.equal(queryConfigOf(answer(2)).command, ConfigCommand.testExact, 'the answer echoes CCmd');
  assert.equal(queryConfigOf(answer(3)).config.toString(), CAPTURE_CONFIG, 'test-prefix answers with the whole string');
  const present = answer(5)!;
  assert.equal(present.frame.header.flags, AoeFlag.response | AoeFlag.error);
  assert.equal(present.frame.header.error, AoeError.configStringPresent);
  assert.equal(queryConfigOf(present).config.toString(), CAPTURE_CONFIG, 'set-if-empty on a set string: error 4, string unchanged');
  assert.equal(answer(6)!.frame.header.error, AoeError.badArgument, 'CCmd 9');
  assert.equal(answer(7)!.frame.header.version, 2, 'vblade does not check Ver: it echoes it');
  for (const i of [1, 2, 3, 5, 6, 7]) assert.equal(answer(i)!.bytes.length, AOE_ARG_OFFSET + QUERY_CONFIG_LENGTH + CAPTURE_CONFIG.length, `answer ${i} is not padded`);
});

test('vblade-commands: Reserve/Release read, set, refusal of others (error 6) and release by force set', () => {
  const { peer, request, answer } = exchanges();
  assert.deepEqual(reserveOf(answer(8)).macs, []);
  assert.deepEqual(reserveOf(answer(9)).macs.map(macHex), [peer]);
  const refused = answer(10)!;
  assert.equal(macHex(request(10).frame.source), SPOOFED_MAC);
  assert.equal(refused.frame.header.error, AoeError.targetReserved, 'ATA from a MAC not on the list');
  assert.equal(refused.bytes.length, MIN_FRAME_LENGTH);
  const setRefused = answer(11)!;
  assert.equal(setRefused.frame.header.error, AoeError.targetReserved);
  assert.deepEqual(reserveOf(setRefused).macs.map(macHex), [peer], 'the refusal carries the list as it is');
  assert.deepEqual(reserveOf(answer(12)).macs, [], 'force set with no MACs releases');
  assert.equal(answer(12)!.bytes.length, AOE_ARG_OFFSET + 2);
});

test('vblade-commands: ATA identify, 28-bit read masking the device bits, 48-bit read, write then read back', () => {
  const { request, answer } = exchanges();
  assert.equal(identifySectors(ataOf(answer(13)).data), DISK_SECTORS);
  assert.equal(identifyString(ataOf(answer(13)).data, 10, 20).slice(0, 4), '7.3:');
  const read28 = ataOf(request(14));
  assert.deepEqual([read28.commandOrStatus, read28.flags, read28.lba, effectiveLba(read28)], [AtaOpcode.readSectors, 0, 0xe0000000, 0]);
  assertDemoMbr(ataOf(answer(14)).data, 'READ SECTORS at 0xe0000000 reads LBA 0');
  assert.equal(ataOf(answer(15)).data.length, 2 * SECTOR_SIZE);
  const written = ataOf(request(16));
  assert.equal(written.flags, AtaFlag.extended | AtaFlag.write);
  assert.equal(written.data.length, SECTOR_SIZE);
  const ack = answer(16)!;
  assert.equal(ack.bytes.length, MIN_FRAME_LENGTH, 'a write answer is the 60-byte minimum');
  assert.deepEqual(ataOf(ack).data, written.data.subarray(0, MIN_FRAME_LENGTH - AOE_ARG_OFFSET - ATA_HEADER_LENGTH), 'its padding is the request buffer: the first 24 written bytes');
  assert.deepEqual(ataOf(answer(17)).data, written.data, 'read back');
});

test('vblade-commands: ATA errors: IDNF past the end, ABRT for an unknown opcode, AoE error 2 past the sector count, error 1 for an unknown command', () => {
  const { request, answer } = exchanges();
  const past = ataOf(answer(18));
  assert.equal(ataOf(request(18)).lba, DISK_SECTORS - 1);
  assert.deepEqual([past.commandOrStatus, past.featureOrError, past.sectorCount], [AtaStatus.ready | AtaStatus.error, AtaErrorBit.idNotFound, 2]);
  assert.equal(answer(18)!.bytes.length, AOE_ARG_OFFSET + ATA_HEADER_LENGTH, 'vblade does not pad this one');
  assert.deepEqual([ataOf(answer(19)).sectorCount, ataOf(answer(19)).commandOrStatus], [POWER_MODE_ACTIVE, AtaStatus.ready], 'CHECK POWER MODE');
  assert.equal(ataOf(answer(20)).commandOrStatus, 0, 'FLUSH CACHE: vblade leaves the status register 0');
  assert.deepEqual([ataOf(answer(21)).commandOrStatus, ataOf(answer(21)).featureOrError], [AtaStatus.ready | AtaStatus.error, AtaErrorBit.aborted], 'SET FEATURES');
  assert.equal(answer(22)!.frame.header.error, AoeError.badArgument, '3 sectors when Query Config said 2');
  const unknown = answer(23)!;
  assert.equal(unknown.frame.header.error, AoeError.unrecognizedCommand);
  assert.equal(decodeAoeBody(unknown.frame.header.command, unknown.frame.arg), undefined);
  assert.deepEqual(unknown.frame.arg, request(23).frame.arg, 'the whole request comes back');
});

test('vblade-commands: Mac Mask List read, edit (vblade 25 does not delete), and a bad directive', () => {
  const { peer, answer } = exchanges();
  assert.deepEqual(maskListOf(answer(24)), { command: 0, error: 0, count: 0, directives: [] });
  const edited = maskListOf(answer(25));
  assert.equal(edited.error, MaskError.none);
  assert.deepEqual(
    edited.directives.map((d) => [d.command, macHex(d.mac)]),
    [
      [MaskDirective.none, peer],
      [MaskDirective.none, '525400aabbcc'],
    ],
    'add, add, delete, none: the deleted MAC is still listed',
  );
  const bad = maskListOf(answer(26));
  assert.deepEqual({ ...bad, directives: bad.directives.length }, { command: 1, error: MaskError.badDirective, count: 1, directives: 0 }, 'Dir Count is the index of the bad directive');
});
