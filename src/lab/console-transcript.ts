import { DisklessError } from '../errors/index.js';

/**
 * A recorded serial console: the chunks exactly as they arrived, each with its arrival time in
 * ms since power-on. Stored as JSON lines `[atMs, "text"]` (`*.console.jsonl`), which keeps
 * escape sequences and `\r` intact and diffs well. QemuVm records one when asked; the
 * BootTimeline tests replay them.
 */
export interface ConsoleChunk {
  readonly atMs: number;
  readonly text: string;
}

/** Encodes chunks as JSON lines, one `[atMs, text]` per line. */
export function encodeTranscript(chunks: readonly ConsoleChunk[]): string {
  return chunks.map((c) => JSON.stringify([c.atMs, c.text])).join('\n') + (chunks.length ? '\n' : '');
}

/** Decodes a `*.console.jsonl` transcript; a malformed line is a LAB_TRANSCRIPT_INVALID error naming it. */
export function decodeTranscript(text: string, source = '<transcript>'): ConsoleChunk[] {
  const chunks: ConsoleChunk[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (raw === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = undefined;
    }
    if (!Array.isArray(value) || value.length !== 2 || typeof value[0] !== 'number' || !Number.isFinite(value[0]) || value[0] < 0 || typeof value[1] !== 'string') {
      throw new DisklessError('LAB_TRANSCRIPT_INVALID', `cannot read ${source} line ${i + 1}: expected [atMs, "text"]`, { source, line: i + 1 });
    }
    chunks.push({ atMs: value[0], text: value[1] });
  }
  return chunks;
}
