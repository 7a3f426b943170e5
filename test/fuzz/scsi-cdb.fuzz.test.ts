/**
 * Fuzzes the SCSI side of the target with mutations of CDBs libiscsi's conformance suite and
 * iPXE send (every opcode the target implements, plus a few it does not): decodeCdb must
 * decode or throw SCSI_CHECK_CONDITION, LogicalUnit.plan must never throw, and MODE SELECT
 * parameter lists must decode or name a bad byte inside the list.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeCdb } from '../../src/wire/scsi/cdb.js';
import { parseModeSelect } from '../../src/wire/scsi/mode-select.js';
import { LogicalUnit, unitIdentity } from '../../src/services/iscsi/logical-unit.js';
import type { BlockDevice } from '../../src/store/block-device.js';
import { fuzzDecoder } from '../support/mutate.js';

const INPUTS = 120_000;
const hex = (h: string) => Buffer.from(h.padEnd(32, '0'), 'hex');
const CDBS = [
  '00', '0300000012', '08000010 01'.replace(' ', ''), '0a00002001', '12000000600000', '12018300ff00', '1511000018', '16', '17', '1a083f00ff00', '1b01000001', '1e00000001',
  '25', '28000000004000000400', '2a080000000800002800', '2e020000000100000100', '2f020000001000000800', '34020000000900000100', '35000000000000000000', '41080000000200000400',
  '420000000000000018', '55100000000000001400', '56', '57', '5a083f0000000000ff00', '5e030000000000100000', '5f01030000000000180000', '88000000000000000040000000040000',
  '89080000000000000007000000020000', '8a000000000000000040000000040000', '8b000000000000000007000000020000', '8e000000000000000001000000010000', '8f000000000000000020000000010000',
  '90020000000000000009000000010000', '91000000000000000000000000000000', '9301000000000000000300000005', '9e100000000000000000000000200000', '9e120000000000000040000000200000',
  'a0000000000000001000', 'a30c8128000000000100', 'a8000000000100000001', 'aa000000000100000001', 'ae000000000100000001', 'af000000000100000001', '9c', 'c0', '7f',
].map(hex);

const device: BlockDevice = {
  size: 64 * 1024 * 1024,
  blockSize: 512,
  readOnly: false,
  capabilities: { unmap: false, volatileWriteCache: true },
  read: async (_o, n) => Buffer.alloc(n),
  readInto: async () => undefined,
  write: async () => undefined,
  flush: async () => undefined,
  unmap: async () => undefined,
  close: async () => undefined,
};

test(`SCSI CDB decoder and command planner survive ${INPUTS} mutated CDBs`, () => {
  const unit = new LogicalUnit(device, false, unitIdentity('iqn.2026-11.io.fuzz:t', 1), { initiator: 'iqn.fuzz:i', isid: 1 });
  let plans = 0;
  const result = fuzzDecoder(
    (input) => {
      // The planner catches its own CHECK CONDITIONs: it must never throw at all.
      const plan = unit.plan(input, input.length * 512);
      assert.ok(['dataIn', 'dataOut', 'noData', 'fail'].includes(plan.kind));
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
