/**
 * Fuzzes the SCSI side of the target with mutations of CDBs libiscsi's conformance suite and
 * iPXE send (every opcode the target implements, plus a few it does not): decodeCdb must
 * decode or throw SCSI_CHECK_CONDITION, LogicalUnit.plan must never throw, and MODE SELECT
 * parameter lists must decode or name a bad byte inside the list; UNMAP parameter lists must
 * decode to ranges inside the unit or a refusal, and running them never unmaps outside it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeCdb } from '../../src/wire/scsi/cdb.js';
import { parseModeSelect } from '../../src/wire/scsi/mode-select.js';
import { LogicalUnit, unitIdentity } from '../../src/services/iscsi/logical-unit.js';
import type { BlockDevice } from '../../src/store/block-device.js';
import { decodeUnmapList, encodeUnmapList } from '../../src/wire/scsi/thin-provisioning.js';
import { fuzzDecoder } from '../support/mutate.js';

const INPUTS = 120_000;
const hex = (h: string) => Buffer.from(h.padEnd(32, '0'), 'hex');
const CDBS = [
  '00', '0300000012', '08000010 01'.replace(' ', ''), '0a00002001', '12000000600000', '12018300ff00', '1511000018', '16', '17', '1a083f00ff00', '1b01000001', '1e00000001',
  '25', '28000000004000000400', '2a080000000800002800', '2e020000000100000100', '2f020000001000000800', '34020000000900000100', '35000000000000000000', '41080000000200000400',
  '420000000000000018', '55100000000000001400', '56', '57', '5a083f0000000000ff00', '5e030000000000100000', '5f01030000000000180000', '88000000000000000040000000040000',
  '89080000000000000007000000020000', '8a000000000000000040000000040000', '8b000000000000000007000000020000', '8e000000000000000001000000010000', '8f000000000000000020000000010000',
  '90020000000000000009000000010000', '91000000000000000000000000000000', '9301000000000000000300000005', '9e100000000000000000000000200000', '9e120000000000000040000000200000',
  'a0000000000000001000', '42010000000000002800', '9e120000000000001000000000180000', '9e12ffffffffffffffff00000018000000', '930800000000000000100000001000', '41180000000000000100', 'a30c8128000000000100', 'a8000000000100000001', 'aa000000000100000001', 'ae000000000100000001', 'af000000000100000001', '9c', 'c0', '7f',
].map(hex);

const VOLUME = 64 * 1024 * 1024;
/** Unmapped ranges the thin device was asked for: each must lie inside the volume, block-aligned. */
const unmapped: Array<[number, number]> = [];
function fakeDevice(thin: boolean): BlockDevice {
  return {
    size: VOLUME,
    blockSize: 512,
    readOnly: false,
    capabilities: { unmap: thin, volatileWriteCache: true },
    read: async (_o, n) => Buffer.alloc(n),
    readInto: async () => undefined,
    write: async () => undefined,
    flush: async () => undefined,
    unmap: async (o, n) => {
      unmapped.push([o, n]);
    },
    allocationStatus: async (o, n) => [{ offset: o, length: n, mapped: false }],
    close: async () => undefined,
  };
}

test(`SCSI CDB decoder and command planner survive ${INPUTS} mutated CDBs (fully and thin provisioned)`, () => {
  const units = [false, true].map((thin) => new LogicalUnit(fakeDevice(thin), false, unitIdentity('iqn.2026-11.io.fuzz:t', 1), { initiator: 'iqn.fuzz:i', isid: 1 }));
  let plans = 0;
  const result = fuzzDecoder(
    (input) => {
      // The planner catches its own CHECK CONDITIONs: it must never throw at all.
      for (const unit of units) {
        const plan = unit.plan(input, input.length * 512);
        assert.ok(['dataIn', 'dataOut', 'noData', 'fail'].includes(plan.kind));
      }
      plans++;
      return decodeCdb(input);
    },
    CDBS,
    INPUTS,
  );
  assert.equal(result.inputs, INPUTS);
  assert.equal(plans, INPUTS);
  assert.ok(result.rejected > 0 && result.accepted > 0, JSON.stringify(result));
});

test('MODE SELECT parameter lists: a change or a byte offset inside the list, never a throw', () => {
  const geo = { blocks: 131072n, blockSize: 512, readOnly: false, volatileWriteCache: true, maxTransferBlocks: 16384, physicalBlockSize: 4096 };
  const lists = [
    Buffer.from('000000000a0a04100000000000000000', 'hex'),
    Buffer.from('00000008000200000000020008120400000000000000000000000000000000000000', 'hex'),
    Buffer.from('0000000000000000010a0000000000000000000000', 'hex'),
  ];
  let changes = 0;
  const result = fuzzDecoder(
    (input) => {
      for (const ten of [false, true]) {
        const r = parseModeSelect(input, ten, geo, false);
        if (typeof r === 'number') assert.ok(r >= 0 && r <= input.length, `offset ${r} outside the list of ${input.length}`);
        else changes++;
      }
    },
    lists,
    20_000,
  );
  assert.equal(result.rejected, 0);
  assert.ok(changes > 0);
});

test('UNMAP parameter lists: ranges inside the unit or a refusal naming a byte of the list; execution unmaps only inside the volume', async () => {
  const blocks = BigInt(VOLUME / 512);
  const limits = { capacity: blocks, maxDescriptors: 1024, maxBlocks: 1 << 20 };
  const seeds = [
    encodeUnmapList([{ lba: 0n, blocks: 8 }]),
    encodeUnmapList([{ lba: 16n, blocks: 1 }, { lba: 1000n, blocks: 256 }, { lba: blocks - 1n, blocks: 1 }]),
    encodeUnmapList([{ lba: blocks, blocks: 1 }]),
    encodeUnmapList([]),
  ];
  let accepted = 0;
  const lists: Buffer[] = [];
  const result = fuzzDecoder(
    (input) => {
      const r = decodeUnmapList(input, limits);
      if ('ranges' in r) {
        accepted++;
        let total = 0;
        for (const x of r.ranges) {
          assert.ok(x.blocks > 0 && x.lba + BigInt(x.blocks) <= blocks, `range ${x.lba}+${x.blocks} outside the unit`);
          total += x.blocks;
        }
        assert.ok(r.ranges.length <= limits.maxDescriptors && total <= limits.maxBlocks);
      } else if (r.error.kind === 'invalidField') assert.ok(r.error.byte >= 0 && r.error.byte < input.length, `field pointer ${r.error.byte} outside ${input.length} bytes`);
      if (lists.length < 2000) lists.push(input);
    },
    seeds,
    30_000,
  );
  assert.equal(result.rejected, 0, 'decodeUnmapList never throws');
  assert.ok(accepted > 0);
  const unit = new LogicalUnit(fakeDevice(true), false, unitIdentity('iqn.2026-11.io.fuzz:t', 1), { initiator: 'iqn.fuzz:u', isid: 2 });
  unmapped.length = 0;
  let good = 0;
  for (const list of lists) {
    const cdb = Buffer.alloc(16);
    cdb[0] = 0x42;
    cdb.writeUInt16BE(list.length, 7);
    const plan = unit.plan(cdb, list.length);
    const res = plan.kind === 'dataOut' ? await plan.run([list]) : plan.kind === 'fail' ? plan.result : await plan.run();
    if (res.status === 0) good++;
    else assert.equal(res.status, 2, 'CHECK CONDITION otherwise');
  }
  assert.ok(good > 0);
  for (const [o, n] of unmapped) assert.ok(o % 512 === 0 && n % 512 === 0 && n > 0 && o + n <= VOLUME, `unmap ${o}+${n}`);
});
