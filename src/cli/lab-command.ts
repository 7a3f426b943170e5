import type { Command } from 'commander';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadConfigFile, validateConfig } from '../config/load-config.js';
import type { Config } from '../config/schema.js';
import { DisklessError } from '../errors/index.js';
import { BootStage, type BootEvent } from '../lab/boot-timeline.js';
import { encodeTranscript } from '../lab/console-transcript.js';
import { LAB_DEFAULTS, Lab } from '../lab/lab.js';
import { processAlive } from '../store/process-alive.js';
import { LAB_DEMO_MAC, labConfigDocument, labOptionsFromConfig, writeLabConfig } from '../lab/lab-config.js';
import { runBoot, type BootRun } from '../lab/run-boot.js';
import { CLI_MAIN, expectedPorts, waitListening } from '../lab/serve-stack.js';
import { TIMELINE_HEADER, formatTimelineRow } from '../lab/timeline-table.js';
import { parseMac } from './option-values.js';

/** Name of the server process in the lab state directory (`serve.pid`, `serve.log`). */
const SERVE = 'serve';

/** Options of `labUp`. */
export interface LabUpOptions {
  readonly namespace: string;
  /** A server configuration file; default: the lab configuration (demo node + demo disk). */
  readonly config?: string;
  /** How long to wait for the server's ports. Default 15 s. */
  readonly readyTimeoutMs?: number;
  readonly out?: NodeJS.WritableStream;
}

/** What `labUp` brought up. */
export interface LabUpResult {
  readonly lab: Lab;
  readonly configPath: string;
  readonly config: Config;
  readonly serverPid: number;
}

/**
 * `diskless lab up`: creates the lab network (namespace, bridge at `server.address`) and starts
 * `diskless serve --config FILE` inside it, detached, its pid and log in the lab state
 * directory. Idempotent: a running lab server is left running. Used by `diskless up` too.
 */
export async function labUp(options: LabUpOptions): Promise<LabUpResult> {
  const out = options.out ?? process.stdout;
  const stateDir = new Lab({ namespace: options.namespace }).stateDir;
  let configPath: string;
  let config: Config;
  if (options.config !== undefined) {
    configPath = resolve(options.config);
    config = await loadConfigFile(configPath);
  } else {
    await mkdir(stateDir, { recursive: true });
    configPath = join(stateDir, 'diskless.yaml');
    const dataDir = join(stateDir, 'data');
    await writeLabConfig(configPath, { dataDir });
    config = validateConfig(labConfigDocument({ dataDir }), configPath);
  }
  const lab = new Lab(labOptionsFromConfig(config, options.namespace));
  await lab.up();
  const recorded = (await lab.status()).recorded.find((r) => r.name === SERVE && r.alive);
  let serverPid: number;
  if (recorded) {
    serverPid = recorded.pid;
    out.write(`server already running (pid ${serverPid})\n`);
  } else {
    serverPid = await lab.spawnDetached(SERVE, process.execPath, [CLI_MAIN, SERVE, '--config', configPath]);
    const missing = await waitListening(lab, expectedPorts(config), options.readyTimeoutMs ?? 15_000, () => processAlive(serverPid));
    if (!processAlive(serverPid)) {
      const log = await readFile(lab.logPath(SERVE), 'utf8').catch(() => '');
      await lab.down();
      throw new DisklessError('LAB_PROCESS_EXITED', `the server exited while starting (lab removed): ${log.trim().split('\n').slice(-3).join(' | ')}`, { process: SERVE, log });
    }
    if (missing.length > 0) {
      out.write(`warning: the server is not listening on ${missing.map((p) => `${p.service} ${p.protocol}/${p.port}`).join(', ')} yet\n`);
    }
  }
  out.write(
    [
      `lab ${lab.namespace} is up`,
      `  bridge   ${lab.bridge} ${lab.address}/${lab.prefixLength} ${lab.linkLocal}/64`,
      `  server   pid ${serverPid}, config ${configPath}, log ${lab.logPath(SERVE)}`,
      `  next     diskless lab boot${options.namespace === LAB_DEFAULTS.namespace ? '' : ` --namespace ${options.namespace}`}`,
      '',
    ].join('\n'),
  );
  return { lab, configPath, config, serverPid };
}

/** Options of `labBoot`. */
export interface LabBootOptions {
  readonly namespace: string;
  readonly mac: string;
  readonly uefi: boolean;
  /** Firmware PXE: OVMF's own PXE client on a virtio NIC without iPXE ROM (needs `uefi`). */
  readonly nativePxe?: boolean;
  readonly timeoutMs: number;
  /** Copy the raw serial console to this stream. */
  readonly console?: NodeJS.WritableStream;
  /** Save the console as a `*.console.jsonl` transcript here. */
  readonly transcript?: string;
  readonly out?: NodeJS.WritableStream;
  readonly signal?: AbortSignal;
}

/**
 * `diskless lab boot`: powers on a VM on a new tap in a lab that is up, prints one timeline row
 * per stage as it is reached, and resolves with the run once the marker shows. Throws
 * LAB_BOOT_FAILED (a failure line), LAB_TIMEOUT, or LAB_PROCESS_EXITED (QEMU ended first). The
 * VM is killed and its tap removed in every case.
 */
export async function labBoot(options: LabBootOptions): Promise<BootRun> {
  const out = options.out ?? process.stdout;
  const lab = new Lab({ namespace: options.namespace });
  const tap = await lab.addTap();
  let previous: BootEvent | undefined;
  let run: BootRun;
  const mode = options.uefi ? (options.nativePxe ? 'UEFI, firmware PXE' : 'UEFI') : 'BIOS';
  out.write(`booting ${options.mac} (${mode}) on ${tap} in ${lab.namespace}\n${TIMELINE_HEADER}\n`);
  try {
    run = await runBoot({
      namespace: lab.namespace,
      tap,
      mac: options.mac,
      uefi: options.uefi,
      ...(options.nativePxe ? { nativePxe: true } : {}),
      timeoutMs: options.timeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
      onEvent: (event) => {
        out.write(`${formatTimelineRow(event, previous)}\n`);
        previous = event;
      },
      ...(options.console ? { onConsole: (chunk) => options.console!.write(chunk.text) } : {}),
    });
  } finally {
    await lab.removeTap(tap).catch(() => undefined);
  }
  if (options.transcript !== undefined) await writeFile(options.transcript, encodeTranscript(run.transcript));
  switch (run.outcome) {
    case 'marker':
      out.write(`reached the marker in ${((run.markerMs ?? 0) / 1000).toFixed(3)} s\n`);
      return run;
    case 'failed':
      throw new DisklessError('LAB_BOOT_FAILED', `boot failed at ${((run.failure?.atMs ?? 0) / 1000).toFixed(3)} s: ${run.failure?.line ?? ''}`, {
        line: run.failure?.line,
        error: run.failure?.detail.error,
        lastStage: lastStage(run),
      });
    case 'timeout':
      throw new DisklessError('LAB_TIMEOUT', `no marker after ${options.timeoutMs / 1000} s; last stage reached: ${lastStage(run)}`, { timeoutMs: options.timeoutMs, lastStage: lastStage(run) });
    case 'exited':
      throw new DisklessError('LAB_PROCESS_EXITED', `QEMU exited before the marker (status ${run.exit?.code ?? run.exit?.signal}): ${run.exit?.stderr ?? ''}`, { process: 'qemu', stderr: run.exit?.stderr });
    case 'aborted':
      throw new DisklessError('LAB_TIMEOUT', 'boot interrupted', { lastStage: lastStage(run) });
  }
}

function lastStage(run: BootRun): string {
  return run.events.filter((e) => e.stage !== BootStage.Failure).at(-1)?.stage ?? BootStage.PowerOn;
}

export function parseTimeout(value: string): number {
  const s = Number(value);
  if (!Number.isFinite(s) || s <= 0 || s > 3600) {
    throw new DisklessError('USAGE', `option --timeout: value ${JSON.stringify(value)} is not allowed; allowed: seconds, 0 < s <= 3600`, { field: '--timeout', value, allowed: '0 < s <= 3600' });
  }
  return Math.round(s * 1000);
}

/**
 * `diskless lab up|boot|down|status`: the built-in lab (a network namespace with a bridge, our
 * server inside, QEMU VMs on taps). Every subcommand takes --namespace (default diskless-lab).
 */
export function registerLabCommand(program: Command): void {
  const lab = program.command('lab').description('the built-in lab: an isolated boot network with our server and QEMU VMs');
  const ns = '--namespace <name>';
  const nsHelp = 'network namespace of the lab';

  lab
    .command('up')
    .description('create the lab network and start the server inside it')
    .option('-c, --config <file>', 'server configuration (default: a demo node booting the built-in demo disk)')
    .option(ns, nsHelp, LAB_DEFAULTS.namespace)
    .action(async (opts: { config?: string; namespace: string }) => {
      await labUp({ namespace: opts.namespace, ...(opts.config === undefined ? {} : { config: opts.config }) });
    });

  lab
    .command('boot')
    .description('boot one VM in the lab and print its timeline; exit 0 at the marker')
    .option('--mac <mac>', 'MAC of the VM NIC', LAB_DEMO_MAC)
    .option('--uefi', 'boot with OVMF (UEFI) instead of SeaBIOS', false)
    .option('--native-pxe', "PXE boot with the firmware's own client (OVMF, virtio NIC without iPXE ROM: DHCP, TFTP of ipxe.efi, then iPXE); implies --uefi", false)
    .option('--timeout <seconds>', 'give up after this long', '60')
    .option('--console', 'copy the serial console to stderr', false)
    .option('--transcript <file>', 'save the console as a *.console.jsonl transcript')
    .option(ns, nsHelp, LAB_DEFAULTS.namespace)
    .action(async (opts: { mac: string; uefi: boolean; nativePxe: boolean; timeout: string; console: boolean; transcript?: string; namespace: string }) => {
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        await labBoot({
          namespace: opts.namespace,
          mac: parseMac('--mac', opts.mac),
          uefi: opts.uefi || opts.nativePxe,
          nativePxe: opts.nativePxe,
          timeoutMs: parseTimeout(opts.timeout),
          signal: controller.signal,
          ...(opts.console ? { console: process.stderr } : {}),
          ...(opts.transcript === undefined ? {} : { transcript: opts.transcript }),
        });
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });

  lab
    .command('down')
    .description('stop everything in the lab and delete its namespace')
    .option(ns, nsHelp, LAB_DEFAULTS.namespace)
    .action(async (opts: { namespace: string }) => {
      const l = new Lab({ namespace: opts.namespace });
      const wasUp = await l.isUp();
      await l.down();
      process.stdout.write(wasUp ? `lab ${l.namespace} is down\n` : `lab ${l.namespace} was not up\n`);
    });

  lab
    .command('status')
    .description('show the lab namespace, bridge, taps and processes')
    .option(ns, nsHelp, LAB_DEFAULTS.namespace)
    .option('--json', 'print JSON', false)
    .action(async (opts: { namespace: string; json: boolean }) => {
      const s = await new Lab({ namespace: opts.namespace }).status();
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
        return;
      }
      const lines = [`lab ${s.namespace}: ${s.up ? 'up' : 'down'}`];
      if (s.bridge) lines.push(`  bridge   ${s.bridge.name} ${s.bridge.state} ${s.bridge.mac} ${s.bridge.addresses.join(' ')}`);
      for (const t of s.taps) lines.push(`  tap      ${t.name} ${t.state}`);
      for (const r of s.recorded) lines.push(`  ${r.name.padEnd(8)} pid ${r.pid} ${r.alive ? 'running' : 'not running'}`);
      for (const p of s.processes) lines.push(`  process  ${p.pid} ${p.command}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
