import { BootStage, BootTimeline, type BootEvent } from './boot-timeline.js';
import type { ConsoleChunk } from './console-transcript.js';
import { QemuVm, type QemuVmOptions, type VmExit } from './qemu-vm.js';

/** How one lab boot ended. */
export type BootRunOutcome = 'marker' | 'failed' | 'timeout' | 'exited' | 'aborted';

/** Options of `runBoot`: the VM's, plus when to give up. */
export interface RunBootOptions extends Omit<QemuVmOptions, 'onConsole' | 'onExit'> {
  /** Give up (and kill the VM) this long after power-on. */
  readonly timeoutMs: number;
  /** Success text on the console. Default `DISKLESS-OK`. */
  readonly marker?: string;
  /** Called for each stage as it is reached (for live timeline output). */
  readonly onEvent?: (event: BootEvent) => void;
  /** Called for every raw console chunk. */
  readonly onConsole?: (chunk: ConsoleChunk) => void;
  /** Aborting kills the VM; the result's outcome is then `aborted`. */
  readonly signal?: AbortSignal;
}

/** The result of one boot: every stage reached, the console, and how it ended. */
export interface BootRun {
  readonly outcome: BootRunOutcome;
  readonly events: readonly BootEvent[];
  /** Power-on → marker, when the marker was reached. */
  readonly markerMs?: number;
  readonly failure?: BootEvent;
  /** ms since power-on when the run ended. */
  readonly endedMs: number;
  readonly transcript: readonly ConsoleChunk[];
  /** How QEMU exited (always killed by the end of the run). */
  readonly exit?: VmExit;
}

/**
 * Powers on one VM, follows its console with a BootTimeline, and ends the run at the first of:
 * the marker, a failure line, QEMU exiting, the timeout, or the abort signal. The VM is always
 * killed before this resolves. Used by `diskless lab boot`, the boot benchmark and e2e tests.
 */
export async function runBoot(options: RunBootOptions): Promise<BootRun> {
  const timeline = new BootTimeline(options.marker === undefined ? {} : { marker: options.marker });
  let settle: (outcome: BootRunOutcome) => void = () => undefined;
  const ended = new Promise<BootRunOutcome>((resolve) => {
    settle = resolve;
  });
  const { timeoutMs, marker: _marker, onEvent, onConsole, signal, ...vmOptions } = options;
  const vm = new QemuVm({
    ...vmOptions,
    onConsole: (chunk) => {
      onConsole?.(chunk);
      for (const event of timeline.feed(chunk.text, chunk.atMs)) onEvent?.(event);
      if (timeline.outcome === 'marker') settle('marker');
      else if (timeline.outcome === 'failed') settle('failed');
    },
    onExit: (exit) => {
      for (const event of timeline.end(exit.atMs)) onEvent?.(event);
      settle(timeline.outcome === 'marker' ? 'marker' : timeline.outcome === 'failed' ? 'failed' : 'exited');
    },
  });
  onEvent?.(timeline.events[0]!);
  const onAbort = () => settle('aborted');
  if (signal?.aborted) return { outcome: 'aborted', events: timeline.events, endedMs: 0, transcript: [] };
  signal?.addEventListener('abort', onAbort, { once: true });
  vm.start();
  const timer = setTimeout(() => settle('timeout'), timeoutMs);
  try {
    const outcome = await ended;
    const endedMs = vm.now();
    await vm.stop();
    const markerMs = timeline.stageAt(BootStage.Marker);
    const failure = timeline.failure;
    return {
      outcome,
      events: [...timeline.events],
      endedMs,
      transcript: vm.transcript,
      ...(markerMs === undefined ? {} : { markerMs }),
      ...(failure === undefined ? {} : { failure }),
      ...(vm.exit === undefined ? {} : { exit: vm.exit }),
    };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    await vm.stop();
  }
}
