import type { BootEvent } from './boot-timeline.js';

/**
 * Text rendering of a boot timeline, one row per stage, printable as the boot goes:
 *
 *   stage        at (s)   step (s)  console
 *   power-on      0.000              (VM started)
 *   firmware      0.152      0.152  SeaBIOS (version 1.16.2-debian-1.16.2-1)
 *   dhcp         18.415     16.084  Configuring (net0 52:54:00:12:34:56).................. ok
 */
export const TIMELINE_HEADER = `${'stage'.padEnd(10)} ${'at (s)'.padStart(8)} ${'step (s)'.padStart(9)}  console`;

/** Widest console excerpt shown in a row. */
const MAX_LINE = 72;

/** One row; `previous` is the event before it (for the step column), undefined for the first. */
export function formatTimelineRow(event: BootEvent, previous: BootEvent | undefined): string {
  const at = (event.atMs / 1000).toFixed(3).padStart(8);
  const step = previous === undefined ? ''.padStart(9) : ((event.atMs - previous.atMs) / 1000).toFixed(3).padStart(9);
  const raw = event.stage === 'power-on' ? '(VM started)' : event.line;
  const line = raw.length > MAX_LINE ? `${raw.slice(0, MAX_LINE - 1)}…` : raw;
  return `${event.stage.padEnd(10)} ${at} ${step}  ${line}`;
}

/** The whole table for a finished run. */
export function formatTimeline(events: readonly BootEvent[]): string {
  return [TIMELINE_HEADER, ...events.map((e, i) => formatTimelineRow(e, events[i - 1]))].join('\n');
}
