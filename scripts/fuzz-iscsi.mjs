#!/usr/bin/env node
// `npm run fuzz:iscsi [-- --inputs N --seed S --workers W]`: mutated PDUs from the captured
// sessions against a live target over TCP (test/support/iscsi-live-fuzz.ts, compiled to
// dist/ by `npm run build`), 1,000,000 by default, with a control session reading throughout.
// Prints progress every 10 s and the final counts; exits 1 if the target crashed, failed
// internally, refused a clean login or stalled the control session.
import { runLiveFuzz } from '../dist/test/support/iscsi-live-fuzz.js';

const argv = process.argv.slice(2);
const flag = (name, dflt) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : dflt);
const inputs = flag('--inputs', 1_000_000);
const seed = flag('--seed', 0x15c5);
const workers = flag('--workers', 6);
if (![inputs, seed, workers].every((n) => Number.isInteger(n) && n > 0)) {
  console.error('usage: npm run fuzz:iscsi -- [--inputs N] [--seed S] [--workers W]');
  process.exit(2);
}
const line = (r) =>
  `${r.seconds.toFixed(0)} s: ${r.inputs} PDUs on ${r.connections} connections (${r.loggedIn} logged in first), ${r.rejects} Rejects, ${r.otherAnswers} other answers, ${r.droppedByTarget} dropped by the target; control: ${r.controlReads} reads checked, slowest ${r.controlMaxMs.toFixed(0)} ms`;
console.log(`fuzz:iscsi: ${inputs} mutated PDUs, seed ${seed}, ${workers} fuzz connections at a time`);
const r = await runLiveFuzz({ inputs, seed, workers, progressMs: 10_000, onProgress: (p) => console.log(line(p)) });
console.log(line(r));
console.log(`target: ${JSON.stringify(r.target ?? null)}`);
const problems = [
  ...(r.targetExit ? [`target ${r.targetExit}`] : []),
  ...(r.target ? (r.target.internalErrors ? [`${r.target.internalErrors} internal errors`] : []) : ['no stats from the target']),
  ...(r.loginFailures ? [`${r.loginFailures} clean logins refused`] : []),
  ...(r.finalSessionOk ? [] : ['no clean session on the fuzzed target after the campaign']),
  ...r.controlErrors,
  ...r.targetErrors.slice(0, 5).map((l) => `target logged: ${l}`),
];
if (problems.length) {
  console.log(`FAILED:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log('ok: the target never crashed, never failed internally, and the control session never stalled');
