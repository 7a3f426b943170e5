/**
 * Fuzzes the AoE frame and argument decoders with mutations of real frames captured in the lab
 * (iPXE and vblade, src/wire/aoe/testdata) and of hand-built frames of every command: Query
 * Config with each CCmd, Mac Mask List with directives and an error answer, Reserve/Release,
 * ATA requests and answers. Every input must decode or throw a DisklessError; what decodes
 * must re-encode to the same header and argument (reserved bytes aside), and decode again to
 * the same thing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AOE_ARG_OFFSET, AOE_OFFSET, decodeAoeBody, decodeAoeFrame, encodeAoeFrame, type AoeBody } from '../../src/wire/aoe/aoe-frame.js';
import { AOE_BROADCAST_SHELF, AOE_BROADCAST_SLOT, AOE_HEADER_LENGTH, AOE_VERSION, AoeCommand, AoeError, AoeFlag, writeAoeHeader, type AoeHeader } from '../../src/wire/aoe/aoe-header.js';
import { ATA_HEADER_LENGTH, AtaFlag, AtaOpcode, AtaStatus, decodeAtaArg, SECTOR_SIZE, writeAtaHeader, type AtaArg } from '../../src/wire/aoe/ata-command.js';
import { encodeIdentifyDevice } from '../../src/wire/aoe/identify-device.js';
import { decodeMacMaskList, encodeMacMaskList, MAC_MASK_DIRECTIVE_LENGTH, MAC_MASK_HEADER_LENGTH, MaskCommand, MaskDirective, MaskError } from '../../src/wire/aoe/mac-mask-list.js';
import { ConfigCommand, decodeQueryConfig, encodeQueryConfig, MAX_CONFIG_STRING, QUERY_CONFIG_LENGTH } from '../../src/wire/aoe/query-config.js';
import { decodeReserveRelease, encodeReserveRelease, RESERVE_HEADER_LENGTH, ReserveCommand } from '../../src/wire/aoe/reserve-release.js';
import { aoeCaptureFiles, capturedAoeFrames } from '../support/aoe-captures.js';
import { fuzzDecoder } from '../support/mutate.js';

const INPUTS = 100_000;
const initiator = Buffer.from('525400ae0001', 'hex');
const target = Buffer.from('020a1c3eac01', 'hex');

function request(command: number, tag: number, ...arg: Buffer[]): Buffer {
  return encodeAoeFrame(target, initiator, { version: AOE_VERSION, flags: 0, error: 0, shelf: 1, slot: 1, command, tag }, ...arg);
}
function response(command: number, tag: number, error: number, ...arg: Buffer[]): Buffer {
  const flags = AoeFlag.response | (error ? AoeFlag.error : 0);
  return encodeAoeFrame(initiator, target, { version: AOE_VERSION, flags, error, shelf: 1, slot: 1, command, tag }, ...arg);
}
function ata(a: Omit<AtaArg, 'data'>, data: Buffer = Buffer.alloc(0)): Buffer[] {
  const h = Buffer.alloc(ATA_HEADER_LENGTH);
  writeAtaHeader(a, h);
  return [h, data];
}

/** Frames of every command and argument shape, built with the encoders. */
function handBuilt(): Buffer[] {
  const frames: Buffer[] = [];
  const qc = (command: number, config: string) => encodeQueryConfig({ bufferCount: 16, firmwareVersion: 0x4019, sectorCount: 2, aoeVersion: 1, command, config: Buffer.from(config) });
  for (const command of Object.values(ConfigCommand)) {
    frames.push(request(AoeCommand.queryConfig, 0x100 + command, qc(command, command === ConfigCommand.read ? '' : 'diskless:node1')));
    frames.push(response(AoeCommand.queryConfig, 0x100 + command, command === ConfigCommand.setIfEmpty ? AoeError.configStringPresent : 0, qc(command, 'diskless:node1')));
  }
  frames.push(encodeAoeFrame(Buffer.alloc(6, 0xff), initiator, { version: AOE_VERSION, flags: 0, error: 0, shelf: AOE_BROADCAST_SHELF, slot: AOE_BROADCAST_SLOT, command: AoeCommand.queryConfig, tag: 1 }, qc(0, '')));
  frames.push(response(AoeCommand.queryConfig, 0x1ff, 0, qc(ConfigCommand.read, 'x'.repeat(MAX_CONFIG_STRING))));
  const other = Buffer.from('525400aabbcc', 'hex');
  const directives = [
    { command: MaskDirective.add, mac: initiator },
    { command: MaskDirective.delete, mac: other },
    { command: MaskDirective.none, mac: Buffer.alloc(6) },
  ];
  frames.push(request(AoeCommand.macMaskList, 0x200, encodeMacMaskList({ command: MaskCommand.read, error: 0, directives: [] })));
  frames.push(request(AoeCommand.macMaskList, 0x201, encodeMacMaskList({ command: MaskCommand.edit, error: 0, directives })));
  frames.push(response(AoeCommand.macMaskList, 0x201, 0, encodeMacMaskList({ command: MaskCommand.edit, error: 0, directives: [{ command: 0, mac: initiator }, { command: 0, mac: other }] })));
  frames.push(response(AoeCommand.macMaskList, 0x202, 0, encodeMacMaskList({ command: MaskCommand.edit, error: MaskError.badDirective, count: 1, directives: [] })));
  for (const [command, macs] of [[ReserveCommand.read, []], [ReserveCommand.set, [initiator]], [ReserveCommand.forceSet, [initiator, other]]] as const) {
    frames.push(request(AoeCommand.reserveRelease, 0x300 + command, encodeReserveRelease({ command, macs: [...macs] })));
    frames.push(response(AoeCommand.reserveRelease, 0x300 + command, 0, encodeReserveRelease({ command, macs: [...macs] })));
  }
  frames.push(response(AoeCommand.reserveRelease, 0x310, AoeError.targetReserved, encodeReserveRelease({ command: ReserveCommand.set, macs: [other] })));
  frames.push(request(AoeCommand.ata, 0x400, ...ata({ flags: 0, featureOrError: 0, sectorCount: 1, commandOrStatus: AtaOpcode.identifyDevice, lba: 0xe0000000 })));
  frames.push(response(AoeCommand.ata, 0x400, 0, ...ata({ flags: 0, featureOrError: 0, sectorCount: 0, commandOrStatus: AtaStatus.ready, lba: 0xe0000000 }, encodeIdentifyDevice({ sectors: 18432, serial: '1.1', firmware: 'V1', model: 'diskless' }))));
  frames.push(request(AoeCommand.ata, 0x401, ...ata({ flags: AtaFlag.extended, featureOrError: 0, sectorCount: 2, commandOrStatus: AtaOpcode.readSectorsExt, lba: 2 ** 40 })));
  frames.push(request(AoeCommand.ata, 0x402, ...ata({ flags: AtaFlag.extended | AtaFlag.write | AtaFlag.async, featureOrError: 0, sectorCount: 2, commandOrStatus: AtaOpcode.writeSectorsExt, lba: 8 }, Buffer.alloc(2 * SECTOR_SIZE, 0x5a))));
  frames.push(response(AoeCommand.ata, 0x403, 0, ...ata({ flags: 0, featureOrError: 0x10, sectorCount: 2, commandOrStatus: AtaStatus.ready | AtaStatus.error, lba: 5 })));
  frames.push(response(AoeCommand.ata, 0x404, AoeError.unrecognizedCommand, Buffer.from('vendor command 0xf0')));
  return frames;
}

function corpus(): Buffer[] {
  const frames = aoeCaptureFiles().flatMap((f) => capturedAoeFrames(f).map((c) => c.bytes));
  return frames.concat(handBuilt());
}

/** Re-encodes a decoded argument; any failure (DisklessError included) is a plain Error so the fuzz loop reports it. */
function checkArg(body: AoeBody, arg: Buffer): void {
  try {
    switch (body.command) {
      case AoeCommand.ata: {
        const h = Buffer.alloc(ATA_HEADER_LENGTH);
        writeAtaHeader(body.ata, h);
        assert.deepEqual(h.subarray(0, 10), arg.subarray(0, 10), 'ATA header (reserved bytes 10-11 aside)');
        assert.deepEqual(decodeAtaArg(Buffer.concat([h, body.ata.data])), body.ata);
        break;
      }
      case AoeCommand.queryConfig: {
        const bytes = encodeQueryConfig(body.queryConfig);
        assert.deepEqual(bytes, arg.subarray(0, QUERY_CONFIG_LENGTH + body.queryConfig.config.length), 'Query Config');
        assert.deepEqual(decodeQueryConfig(bytes), body.queryConfig);
        break;
      }
      case AoeCommand.macMaskList: {
        const m = body.macMaskList;
        const bytes = encodeMacMaskList(m);
        assert.deepEqual(bytes.subarray(1, MAC_MASK_HEADER_LENGTH), arg.subarray(1, MAC_MASK_HEADER_LENGTH), 'Mac Mask header (reserved byte aside)');
        for (let i = 0; i < m.directives.length; i++) {
          const at = MAC_MASK_HEADER_LENGTH + i * MAC_MASK_DIRECTIVE_LENGTH;
          assert.deepEqual(bytes.subarray(at + 1, at + MAC_MASK_DIRECTIVE_LENGTH), arg.subarray(at + 1, at + MAC_MASK_DIRECTIVE_LENGTH), `directive ${i}`);
        }
        assert.deepEqual(decodeMacMaskList(bytes), m);
        break;
      }
      case AoeCommand.reserveRelease: {
        const bytes = encodeReserveRelease(body.reserveRelease);
        assert.deepEqual(bytes, arg.subarray(0, RESERVE_HEADER_LENGTH + 6 * body.reserveRelease.macs.length), 'Reserve/Release');
        assert.deepEqual(decodeReserveRelease(bytes), body.reserveRelease);
        break;
      }
    }
  } catch (err) {
    throw new Error(`decoded command ${body.command} does not re-encode consistently: ${String(err)}`, { cause: err });
  }
}

function checkHeader(header: AoeHeader, input: Buffer): void {
  try {
    const h = Buffer.alloc(AOE_HEADER_LENGTH);
    writeAoeHeader(header, h);
    assert.deepEqual(h, input.subarray(AOE_OFFSET, AOE_ARG_OFFSET), 'AoE header');
  } catch (err) {
    throw new Error(`decoded header does not re-encode: ${String(err)}`, { cause: err });
  }
}

test(`AoE decoders survive ${INPUTS} mutated and random frames`, () => {
  const frames = corpus();
  assert.ok(frames.length >= 60, `corpus has ${frames.length} frames`);
  const seen = new Set<number>();
  const result = fuzzDecoder(
    (input) => {
      const f = decodeAoeFrame(input);
      checkHeader(f.header, input);
      const body = decodeAoeBody(f.header.command, f.arg);
      if (body !== undefined) {
        checkArg(body, f.arg);
        seen.add(body.command);
      }
      return body;
    },
    frames,
    INPUTS,
  );
  assert.equal(result.inputs, INPUTS);
  assert.ok(result.rejected > 0 && result.accepted > 0, JSON.stringify(result));
  assert.deepEqual([...seen].sort(), [AoeCommand.ata, AoeCommand.queryConfig, AoeCommand.macMaskList, AoeCommand.reserveRelease], 'every command decoded at least once');
});
