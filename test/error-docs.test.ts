/** docs/errors.md lists every code in the catalogue, and lists no code that does not exist. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { catalogue } from '../src/errors/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

test('docs/errors.md documents exactly the codes of the catalogue', () => {
  const doc = readFileSync(join(root, 'docs', 'errors.md'), 'utf8');
  const documented = new Set([...doc.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]!));
  const codes = Object.keys(catalogue);
  assert.deepEqual(codes.filter((c) => !documented.has(c)), [], 'codes missing from docs/errors.md (run node scripts/gen-error-docs.mjs)');
  assert.deepEqual([...documented].filter((c) => !(c in catalogue)), [], 'docs/errors.md lists codes that no longer exist');
});
