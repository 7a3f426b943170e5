import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { DisklessError } from '../errors/index.js';
import { LAB_DEFAULTS } from '../lab/lab.js';
import { processAlive } from '../store/process-alive.js';
import { LAB_DEMO_MAC } from '../lab/lab-config.js';
import { labBoot, labUp, parseTimeout } from './lab-command.js';
import { parseMac } from './option-values.js';

/** Options of `up`. */
export interface UpOptions {
  readonly namespace: string;
  readonly config?: string;
  readonly mac: string;
  readonly timeoutMs: number;
  /** Stop after the boot instead of serving until a signal (scripts, tests). */
  readonly once: boolean;
  readonly out?: NodeJS.WritableStream;
  /** Aborting it stops the server and removes the lab; default: SIGINT/SIGTERM. */
  readonly signal?: AbortSignal;
}

/**
 * `diskless up`, the main job of `make up`: brings up the built-in lab with our server inside
 * (the embedded defaults: a demo node that sanboots the built-in DISKLESS-OK disk over
 * iSCSI), boots one VM through the whole chain (DHCP, RA, TFTP, HTTP script, iSCSI) printing
 * the per-stage timeline, then keeps the server running until Ctrl-C, when it stops
 * everything and removes the namespace. A failed boot also removes the lab and rethrows, so
 * the exit status is non-zero.
 */
export async function up(options: UpOptions): Promise<void> {
  const out = options.out ?? process.stdout;
  const { lab, serverPid } = await labUp({ namespace: options.namespace, ...(options.config === undefined ? {} : { config: options.config }), out });
  try {
    await labBoot({ namespace: options.namespace, mac: options.mac, uefi: false, timeoutMs: options.timeoutMs, out, ...(options.signal ? { signal: options.signal } : {}) });
  } catch (err) {
    const log = await readFile(lab.logPath('serve'), 'utf8').catch(() => '');
    out.write(`boot failed; the last lines of the server log:\n${log.trim().split('\n').slice(-10).join('\n')}\n`);
    await lab.down();
    throw err;
  }
  if (!options.once) {
    out.write(`the server keeps running in ${lab.namespace}: boot more VMs with \`diskless lab boot\`; Ctrl-C stops everything\n`);
    const ended = await waitForStop(options.signal, serverPid);
    if (ended === 'server-exited') {
      const log = await readFile(lab.logPath('serve'), 'utf8').catch(() => '');
      await lab.down();
      throw new DisklessError('LAB_PROCESS_EXITED', `the server exited (lab removed): ${log.trim().split('\n').slice(-3).join(' | ')}`, { process: 'serve', log });
    }
  }
  out.write('stopping: server, VMs and the lab namespace\n');
  await lab.down();
  out.write(`lab ${lab.namespace} removed\n`);
}

/** How often `up` checks that the lab server is still alive while it waits for Ctrl-C. */
const SERVER_WATCH_MS = 1000;

/**
 * Resolves on SIGINT/SIGTERM or an aborted `signal`, or with 'server-exited' when the lab
 * server dies. The watch timer is also what keeps this process alive: the server runs
 * detached in the namespace, so nothing else holds the event loop open.
 */
function waitForStop(signal: AbortSignal | undefined, serverPid: number): Promise<'signal' | 'server-exited'> {
  return new Promise((resolve) => {
    const done = (why: 'signal' | 'server-exited') => {
      clearInterval(watch);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(why);
    };
    const onSignal = () => done('signal');
    const watch = setInterval(() => {
      if (!processAlive(serverPid)) done('server-exited');
    }, SERVER_WATCH_MS);
    if (signal?.aborted) return done('signal');
    signal?.addEventListener('abort', onSignal, { once: true });
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
}
/** Registers `diskless up`. */
export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description('bring up the built-in lab, boot one VM through the whole chain, and keep serving until Ctrl-C (what `make up` runs)')
    .option('-c, --config <file>', 'server configuration (default: the embedded lab defaults with a demo node)')
    .option('--namespace <name>', 'network namespace of the lab', LAB_DEFAULTS.namespace)
    .option('--mac <mac>', 'MAC of the VM to boot', LAB_DEMO_MAC)
    .option('--timeout <seconds>', 'give up on the boot after this long', '90')
    .option('--once', 'remove the lab after the boot instead of serving until Ctrl-C', false)
    .action(async (opts: { config?: string; namespace: string; mac: string; timeout: string; once: boolean }) => {
      await up({
        namespace: opts.namespace,
        ...(opts.config === undefined ? {} : { config: opts.config }),
        mac: parseMac('--mac', opts.mac),
        timeoutMs: parseTimeout(opts.timeout),
        once: opts.once,
      });
    });
}
