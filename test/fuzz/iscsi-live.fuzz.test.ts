/**
 * 50,000 mutated PDUs from the captured sessions against a live target over TCP, in a child
 * process (test/support/iscsi-live-fuzz.ts; `npm run fuzz:iscsi` runs 1M the same way). The
 * target must not exit, fail internally, refuse a clean login or stall the control session
 * that reads and checks blocks throughout; bad PDUs get Rejects or dropped connections.
 * Measured ~3-5 s here on 2 shared cores (the bound below leaves room for a loaded machine).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLiveFuzz } from '../support/iscsi-live-fuzz.js';

test('live target: 50k mutated PDUs over TCP, target up, no internal error, control session never stalls', { timeout: 120_000 }, async () => {
  const r = await runLiveFuzz({ inputs: 50_000, seed: 0x5eed5, workers: 6 });
  console.log(
    `live fuzz: ${r.inputs} PDUs in ${r.seconds.toFixed(1)} s on ${r.connections} connections (${r.loggedIn} logged in), ${r.rejects} Rejects, ${r.otherAnswers} other answers, ${r.droppedByTarget} dropped; control ${r.controlReads} reads, slowest ${r.controlMaxMs.toFixed(0)} ms; target RSS ${r.target?.rssMiB.toFixed(0)} MiB`,
  );
  assert.equal(r.targetExit, null, 'the target process did not exit');
  assert.deepEqual(r.targetErrors, [], 'the target logged no error');
  assert.equal(r.target?.internalErrors, 0, 'no handler threw');
  assert.equal(r.loginFailures, 0, 'every clean login was accepted');
  assert.deepEqual(r.controlErrors, [], 'every control read came back right and in time');
  assert.ok(r.controlReads >= 100, `control reads: ${r.controlReads}`);
  assert.ok(r.finalSessionOk, 'a clean session works after the campaign');
  assert.equal(r.inputs, 50_000);
  // The mutations reach the handlers (Rejects), stay valid sometimes (answers) and break framing sometimes (drops).
  assert.ok(r.rejects > 2000 && r.otherAnswers > 2000 && r.droppedByTarget > 200, JSON.stringify({ rejects: r.rejects, answers: r.otherAnswers, drops: r.droppedByTarget }));
  assert.ok(r.target!.reasons['iscsi_bad_field']! > 100 && r.target!.reasons['iscsi_segment_too_long']! > 50, JSON.stringify(r.target!.reasons));
});
