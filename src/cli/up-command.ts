import type { Command } from 'commander';
import { LAB_DEFAULTS } from '../lab/lab.js';
import { LAB_DEMO_MAC } from '../lab/lab-config.js';
import { labBoot, labUp, parseMac, parseTimeout } from './lab-command.js';

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
  const { lab } = await labUp({ namespace: options.namespace, ...(options.config === undefined ? {} : { config: options.config }), out });
  try {
    await labBoot({ namespace: options.namespace, mac: options.mac, uefi: false, timeoutMs: options.timeoutMs, out, ...(options.signal ? { signal: options.signal } : {}) });
  } catch (err) {
    out.write(`boot failed; the server log is ${lab.logPath('serve')}\n`);
    await lab.down();
    throw err;
  }
  if (!options.once) {
    out.write(`the server keeps running in ${lab.namespace}: boot more VMs with \`diskless lab boot\`; Ctrl-C stops everything\n`);
    await waitForStop(options.signal);
  }
  out.write('stopping: server, VMs and the lab namespace\n');
  await lab.down();
  out.write(`lab ${lab.namespace} removed\n`);
}

function waitForStop(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    if (signal?.aborted) return resolve();
    signal?.addEventListener('abort', done, { once: true });
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
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
        mac: parseMac(opts.mac),
        timeoutMs: parseTimeout(opts.timeout),
        once: opts.once,
      });
    });
}
