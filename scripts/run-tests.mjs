#!/usr/bin/env node
// Runs every compiled test file (node's test runner does not discover .ts, nor walk dist by
// itself on Node 20), prints the spec reporter's output and closes with the line
// "N passed, N failed, N skipped". Usage: node scripts/run-tests.mjs [--unit] [filter...]
import { spawn } from 'node:child_process';
import { readdirSync, statSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const filters = args.filter((a) => !a.startsWith('--'));

function walk(dir, out = []) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (e.endsWith('.test.js')) out.push(p);
  }
  return out;
}

let files = walk('dist/src');
if (!unitOnly) files = files.concat(walk('dist/test'));
if (filters.length) files = files.filter((f) => filters.some((x) => f.includes(x)));
files.sort();
if (files.length === 0) {
  console.error('no test files found under dist/: run `npm run build` first');
  process.exit(1);
}

const tapDir = mkdtempSync(join(tmpdir(), 'diskless-tap-'));
const tapFile = join(tapDir, 'results.tap');
const child = spawn(
  process.execPath,
  ['--enable-source-maps', '--test', '--test-concurrency=2', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tapFile}`, ...files],
  { stdio: 'inherit' },
);
child.on('exit', (code, signal) => {
  let pass = 0, fail = 0, skip = 0;
  try {
    const tap = readFileSync(tapFile, 'utf8');
    pass = Number(/^# pass (\d+)/m.exec(tap)?.[1] ?? 0);
    fail = Number(/^# fail (\d+)/m.exec(tap)?.[1] ?? 0) + Number(/^# cancelled (\d+)/m.exec(tap)?.[1] ?? 0);
    skip = Number(/^# skipped (\d+)/m.exec(tap)?.[1] ?? 0) + Number(/^# todo (\d+)/m.exec(tap)?.[1] ?? 0);
  } catch {
    fail = Math.max(fail, 1);
  }
  console.log(`${pass} passed, ${fail} failed, ${skip} skipped`);
  process.exit(code ?? (signal ? 1 : 0));
});
