/**
 * Imports point down the layers (ARCHITECTURE.md): wire knows nothing above it, store never
 * imports services, services see control only through interfaces they declare, only main.ts
 * wires services together, and the CLI sits on top.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const src = join(root, 'src');

/** Rank of each top-level folder: a file may import only from ranks <= its own. */
const rank: Record<string, number> = {
  errors: 0,
  observe: 0,
  config: 0,
  wire: 1,
  net: 2,
  store: 3,
  services: 4,
  clients: 4,
  control: 5,
  lab: 5,
  api: 6,
  'main.ts': 7,
  cli: 8,
};

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (e.endsWith('.ts') && !e.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

function layerOf(file: string): string {
  return relative(src, file).split('/')[0]!;
}

test('every import in src/ points down the layers', () => {
  const violations: string[] = [];
  for (const file of walk(src)) {
    const from = layerOf(file);
    const fromRank = rank[from];
    if (fromRank === undefined) {
      violations.push(`${relative(root, file)}: folder src/${from} has no layer rank in test/architecture.test.ts`);
      continue;
    }
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]/g)) {
      const target = resolve(dirname(file), m[1]!);
      if (!target.startsWith(src)) continue;
      const to = layerOf(target.replace(/\.js$/, '.ts'));
      const toRank = rank[to] ?? rank[`${to}`];
      if (toRank === undefined) continue;
      if (toRank > fromRank) violations.push(`${relative(root, file)} (${from}) imports ${m[1]} (${to})`);
    }
  }
  assert.deepEqual(violations, []);
});

test('wire codecs do no I/O: no node:fs, node:net, node:dgram, timers or logging', () => {
  const bad: string[] = [];
  for (const file of walk(join(src, 'wire'))) {
    const text = readFileSync(file, 'utf8');
    if (/from\s+['"]node:(fs|net|dgram|child_process|http)/.test(text) || /\bsetTimeout\(|\bDate\.now\(|console\./.test(text)) bad.push(relative(root, file));
  }
  assert.deepEqual(bad, []);
});
