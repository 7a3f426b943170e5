import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCunit, summaryLine } from './cunit-summary.js';

/** Shapes seen in real iscsi-test-cu 1.19 output (trimmed): skips reported through CU_PASS, libiscsi's bracketed [FAILED] log lines, trailers of a suite's setup after "passed". */
const SAMPLE = `Suite: CompareAndWrite
  Test: Simple ...    [SKIPPED] COMPAREANDWRITE is not implemented.
    [SKIPPED] COMPAREANDWRITE is not implemented.
passed
  Test: DpoFua ...passed
  Test: iSCSICmdSnTooLow ...passed    [SKIPPED] PERSISTENT RESERVE IN is not implemented.

Suite: iSCSIdatasn
  Test: iSCSIDataSnInvalid ...    [FAILED] WRITE10 command failed with status 251658240 / sense key NO SENSE(0x00) / ASCQ (null)(0x0000)
    [FAILED] WRITE10 command failed with status 251658240
FAILED
    1. test_iscsi_datasn_invalid.c:116  - CU_ASSERT_NOT_EQUAL(ret,0)    [SKIPPED] PERSISTENT RESERVE IN is not implemented.

Suite: iSCSITMF
  Test: AbortTaskSimpleAsync ...    ABORT TASK: unexpected TMF response 5
FAILED
    1. test_async_abort_simple.c:202  - CU_FAIL("unexpected WRITE/ABORT state")
  Test: LUNResetSimpleAsync ...passed


Run Summary:    Type  Total    Ran Passed Failed Inactive
              suites      3      3    n/a      0        0
               tests      6      6      4      2        0
             asserts    100    100     98      2      n/a

Elapsed time =    1.577 seconds
`;

test('parseCunit: summary rows, per-test outcomes, skips found inside passed tests, bracketed [FAILED] ignored', () => {
  const r = parseCunit(SAMPLE);
  assert.deepEqual(r.tests, { total: 6, ran: 6, passed: 4, failed: 2, inactive: 0 });
  assert.deepEqual(r.suites, { total: 3, ran: 3, passed: null, failed: 0, inactive: 0 });
  assert.deepEqual(r.asserts, { total: 100, ran: 100, passed: 98, failed: 2, inactive: null });
  assert.deepEqual(
    r.outcomes.map((o) => [o.name, o.result]),
    [
      ['CompareAndWrite.Simple', 'skipped'],
      ['CompareAndWrite.DpoFua', 'passed'],
      ['CompareAndWrite.iSCSICmdSnTooLow', 'passed'],
      ['iSCSIdatasn.iSCSIDataSnInvalid', 'failed'],
      ['iSCSITMF.AbortTaskSimpleAsync', 'failed'],
      ['iSCSITMF.LUNResetSimpleAsync', 'passed'],
    ],
  );
  assert.equal(r.outcomes[0]!.detail, 'COMPAREANDWRITE is not implemented.');
  assert.equal(r.outcomes[3]!.detail, 'test_iscsi_datasn_invalid.c:116  - CU_ASSERT_NOT_EQUAL(ret,0)');
  assert.equal([r.passed, r.failed, r.skipped].join(), '3,2,1');
  assert.match(summaryLine(r), /^tests 6, run 6, passed 3, failed 2 \(CUnit: 2\), skipped 1;/);
});

test('parseCunit: an interrupted run (no Run Summary) is an error, not a pass', () => {
  assert.throws(() => parseCunit(SAMPLE.slice(0, SAMPLE.indexOf('Run Summary'))), /did not complete/);
});
