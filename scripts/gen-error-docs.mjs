#!/usr/bin/env node
// Regenerates the table in docs/errors.md from the compiled catalogue (run after `npm run build`).
import { writeFileSync } from 'node:fs';
const { catalogue } = await import('../dist/src/errors/catalogue.js');
const rows = Object.entries(catalogue).map(([code, s]) => `| \`${code}\` | ${s.retryable ? 'yes' : 'no'} | ${s.summary} |`);
writeFileSync(
  new URL('../docs/errors.md', import.meta.url),
  `# Error codes\n\nEvery error \`diskless\` raises carries one of these stable codes (\`err.code\`), a message that names\nthe field, the value and what is allowed, and \`data\` with the same facts. Tests assert on codes,\nnever on messages. The CLI prints \`error CODE: message\`. Regenerate this table with\n\`npm run build && node scripts/gen-error-docs.mjs\` after adding a code to \`src/errors/<area>-errors.ts\`.\n\n| code | retryable | cause |\n|---|---|---|\n${rows.join('\n')}\n`,
);
console.log(`docs/errors.md: ${rows.length} codes`);
