/**
 * Locates a source-tree testdata/ folder from a compiled test: tests run from dist/src/...,
 * while fixtures stay beside the source in src/.../testdata (never copied into dist).
 */
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** `testdataPath(import.meta.url, 'x.pcap')` → <repo>/src/<same folder>/testdata/x.pcap. */
export function testdataPath(importMetaUrl: string, name: string): string {
  const dir = dirname(fileURLToPath(importMetaUrl));
  const marker = `${sep}dist${sep}`;
  const at = dir.lastIndexOf(marker);
  const sourceDir = at < 0 ? dir : dir.slice(0, at) + sep + dir.slice(at + marker.length);
  return join(sourceDir, 'testdata', name);
}
