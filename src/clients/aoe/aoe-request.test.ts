/** writeRequestFrame and answersRequest: the bytes the initiator sends, and which frames it accepts as answers. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BROADCAST_MAC } from '../../wire/ethernet/ethernet-frame.js';
import { AoeCommand, AoeFlag, responseHeader, type AoeHeader } from '../../wire/aoe/aoe-header.js';
import { decodeAoeFrame, encodeAoeFrame } from '../../wire/aoe/aoe-frame.js';
import { AtaFlag, AtaOpcode, decodeAtaArg, effectiveLba } from '../../wire/aoe/ata-command.js';
import { answersRequest, writeRequestFrame, type AoeRequestFrame } from './aoe-request.js';
import { Transfer } from './aoe-transfer.js';

const me = Buffer.from('020000000001', 'hex');
const target = Buffer.from('020000000002', 'hex');

function transferRequests(lba48: boolean, lba: number, sectors: number, write: boolean) {
  const t = new Transfer({ mac: target, shelf: 1, slot: 2, lba48, sectorsPerCommand: 17 }, lba, Buffer.alloc(sectors * 512, 0xab), write);
  const out = [];
  for (let r = t.next(); r; r = t.next()) out.push(r);
  return out;
}

test('a read splits into commands of at most sectorsPerCommand, EXT with the E flag when LBA48', () => {
  const requests = transferRequests(true, 2 ** 40, 40, false);
  assert.deepEqual(
    requests.map((r) => [r.ata!.command, r.ata!.flags, r.ata!.lba - 2 ** 40, r.ata!.sectorCount, r.offset]),
    [
      [AtaOpcode.readSectorsExt, AtaFlag.extended, 0, 17, 0],
      [AtaOpcode.readSectorsExt, AtaFlag.extended, 17, 17, 17 * 512],
      [AtaOpcode.readSectorsExt, AtaFlag.extended, 34, 6, 34 * 512],
    ],
  );
});

test('without LBA48: READ/WRITE SECTORS, 28-bit LBA with the device bits 0xe0 in LBA3', () => {
  const [w] = transferRequests(false, 0x0abcdef, 1, true);
  assert.equal(w!.ata!.command, AtaOpcode.writeSectors);
  assert.equal(w!.ata!.flags, AtaFlag.write);
  const frame = Buffer.alloc(2000);
  const length = writeRequestFrame(frame, me, w!, 7);
  const decoded = decodeAoeFrame(frame.subarray(0, length));
  const arg = decodeAtaArg(decoded.arg);
  assert.equal(arg.lba, 0xe0abcdef);
  assert.equal(effectiveLba(arg), 0x0abcdef);
  assert.equal(arg.data.length, 512);
  assert.ok(arg.data.every((b) => b === 0xab));
});

test('writeRequestFrame: headers as given, tag, zero padding to 60 bytes over stale scratch bytes', () => {
  const scratch = Buffer.alloc(2000, 0x77);
  const request: AoeRequestFrame = { destination: target, shelf: 1, slot: 2, command: AoeCommand.ata, ata: { flags: 0, feature: 0, sectorCount: 1, command: AtaOpcode.identifyDevice, lba: 0 } };
  const length = writeRequestFrame(scratch, me, request, 0xdeadbeef);
  assert.equal(length, 60);
  const f = decodeAoeFrame(scratch.subarray(0, length));
  assert.deepEqual([f.destination, f.source], [target, me]);
  assert.deepEqual(f.header, { version: 1, flags: 0, error: 0, shelf: 1, slot: 2, command: AoeCommand.ata, tag: 0xdeadbeef });
  assert.ok(scratch.subarray(36, 60).every((b) => b === 0));
});

test('answersRequest: only a response to the same command from the addressed MAC, shelf and slot', () => {
  const request: AoeRequestFrame = { destination: target, shelf: 1, slot: 2, command: AoeCommand.ata };
  const header: AoeHeader = { version: 1, flags: 0, error: 0, shelf: 1, slot: 2, command: AoeCommand.ata, tag: 5 };
  const answer = (o: Partial<AoeHeader> & { from?: Buffer } = {}) => encodeAoeFrame(me, o.from ?? target, { ...responseHeader(header), ...o }, Buffer.alloc(12));
  assert.equal(answersRequest(request, answer()), true);
  assert.equal(answersRequest(request, answer({ flags: AoeFlag.response | AoeFlag.error, error: 2 })), true, 'an error answer still answers');
  assert.equal(answersRequest(request, answer({ flags: 0 })), false, 'a request with our tag is no answer');
  assert.equal(answersRequest(request, answer({ from: Buffer.from('020000000003', 'hex') })), false, 'another MAC');
  assert.equal(answersRequest(request, answer({ command: AoeCommand.queryConfig })), false);
  assert.equal(answersRequest(request, answer({ shelf: 9 })), false);
  assert.equal(answersRequest(request, answer({ slot: 9 })), false);
  assert.equal(answersRequest(request, Buffer.alloc(20)), false, 'truncated');
  // a broadcast request (locating a target) takes any MAC, but still its shelf and slot
  const locate: AoeRequestFrame = { destination: BROADCAST_MAC, shelf: 1, slot: 2, command: AoeCommand.ata };
  assert.equal(answersRequest(locate, answer({ from: Buffer.from('020000000003', 'hex') })), true);
  assert.equal(answersRequest(locate, answer({ slot: 3 })), false);
  const discover: AoeRequestFrame = { destination: BROADCAST_MAC, shelf: 0xffff, slot: 0xff, command: AoeCommand.ata };
  assert.equal(answersRequest(discover, answer({ shelf: 40, slot: 3 })), true);
});
