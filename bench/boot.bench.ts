/**
 * `npm run bench:boot`: the same QEMU VM (TCG, SeaBIOS + iPXE ROM) boots the demo disk to the
 * DISKLESS-OK marker against each stack, alternating stack by stack within each round, and the
 * median power-on → marker time is compared:
 *   - diskless:        our `diskless serve` with the lab configuration (ServeStack);
 *   - dnsmasq+tgt as shipped (untuned) and tuned (enable-ra, encap 175.176, no-ping).
 * Two scenarios: "first boot" (every lease forgotten before each run: a new node) and "later
 * boot" (the node's lease exists). Goal (issue 2): ours <= 1.0x tuned and <= 0.2x untuned.
 *
 * Options (flag or environment variable):
 *   --runs N            BENCH_BOOT_RUNS          runs per stack and scenario (default 5)
 *   --stacks a,b        BENCH_BOOT_STACKS        diskless,untuned,tuned (default all three)
 *   --scenarios a,b     BENCH_BOOT_SCENARIOS     first,later (default both)
 *   --namespace NS      BENCH_NAMESPACE          lab namespace (default diskless-bench)
 *   --tgt-port N        BENCH_TGT_CONTROL_PORT   tgtd -C control port (default 16)
 * Exits 1 if a stack could not start or a boot did not reach the marker.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../src/config/load-config.js';
import { BootStage } from '../src/lab/boot-timeline.js';
import type { BootStack } from '../src/lab/boot-stack.js';
import { Lab } from '../src/lab/lab.js';
import { LAB_DEMO_MAC, labConfigDocument, writeLabConfig } from '../src/lab/lab-config.js';
import { PeerBootStack } from '../src/lab/peers/peer-boot-stack.js';
import { runBoot } from '../src/lab/run-boot.js';
import { ServeStack } from '../src/lab/serve-stack.js';
import { median } from './bench-support.js';

type StackKey = 'diskless' | 'untuned' | 'tuned';
type Scenario = 'first' | 'later';

interface Settings {
  readonly runs: number;
  readonly stacks: StackKey[];
  readonly scenarios: Scenario[];
  readonly namespace: string;
  readonly tgtPort: number;
}

const BOOT_TIMEOUT_MS = 60_000;
const SCENARIO_LABEL: Record<Scenario, string> = { first: 'first boot (new node, no lease)', later: 'later boot (lease exists)' };

function setting(flag: string, env: string, def: string): string {
  const i = process.argv.indexOf(flag);
  if (i >= 0 && process.argv[i + 1] !== undefined) return process.argv[i + 1]!;
  return process.env[env] ?? def;
}

function listOf<T extends string>(value: string, allowed: readonly T[], what: string): T[] {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) if (!allowed.includes(item as T)) throw new Error(`${what}: ${item} is not one of ${allowed.join(', ')}`);
  return items as T[];
}

const USAGE = `usage: npm run bench:boot -- [--runs N] [--stacks diskless,untuned,tuned] [--scenarios first,later] [--namespace NS] [--tgt-port N]
(or BENCH_BOOT_RUNS, BENCH_BOOT_STACKS, BENCH_BOOT_SCENARIOS, BENCH_NAMESPACE, BENCH_TGT_CONTROL_PORT); needs root`;

/** Reads the options; unknown flags and --help print the usage and exit before anything starts. */
function readSettings(): Settings {
  const known = new Set(['--runs', '--stacks', '--scenarios', '--namespace', '--tgt-port']);
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    }
    if (!known.has(a) || args[i + 1] === undefined) {
      console.error(`${known.has(a) ? `option ${a} needs a value` : `unknown option ${a}`}\n${USAGE}`);
      process.exit(2);
    }
    i++;
  }
  const runs = Number(setting('--runs', 'BENCH_BOOT_RUNS', '5'));
  if (!Number.isInteger(runs) || runs < 1 || runs > 100) throw new Error(`--runs: ${runs} is not an integer 1..100`);
  const tgtPort = Number(setting('--tgt-port', 'BENCH_TGT_CONTROL_PORT', '16'));
  if (!Number.isInteger(tgtPort) || tgtPort < 0 || tgtPort > 65535) throw new Error(`--tgt-port: ${tgtPort} is not a port`);
  return {
    runs,
    stacks: listOf(setting('--stacks', 'BENCH_BOOT_STACKS', 'diskless,untuned,tuned'), ['diskless', 'untuned', 'tuned'] as const, '--stacks'),
    scenarios: listOf(setting('--scenarios', 'BENCH_BOOT_SCENARIOS', 'first,later'), ['first', 'later'] as const, '--scenarios'),
    namespace: setting('--namespace', 'BENCH_NAMESPACE', 'diskless-bench'),
    tgtPort,
  };
}


const sec = (ms: number | undefined) => (ms === undefined ? '   n/a' : (ms / 1000).toFixed(2).padStart(6));

interface Sample {
  readonly markerMs: number;
  readonly dhcpMs: number;
}

async function makeStacks(lab: Lab, workDir: string, s: Settings): Promise<Map<StackKey, BootStack>> {
  const stacks = new Map<StackKey, BootStack>();
  for (const key of s.stacks) {
    if (key === 'diskless') {
      const dataDir = join(workDir, 'diskless-data');
      const configPath = join(workDir, 'diskless.yaml');
      await writeLabConfig(configPath, { dataDir, mac: LAB_DEMO_MAC });
      stacks.set(key, new ServeStack({ lab, configPath, config: validateConfig(labConfigDocument({ dataDir, mac: LAB_DEMO_MAC }), configPath) }));
    } else {
      stacks.set(key, new PeerBootStack({ lab, workDir: join(workDir, key), tuned: key === 'tuned', tgtControlPort: s.tgtPort }));
    }
  }
  return stacks;
}

/** One measured boot of `stack`: start it, optionally forget leases, boot, stop it. */
async function bootOnce(lab: Lab, stack: BootStack, fresh: boolean): Promise<Sample> {
  await stack.start();
  try {
    if (fresh) await stack.forgetLeases();
    const tap = await lab.addTap();
    try {
      const run = await runBoot({ namespace: lab.namespace, tap, mac: LAB_DEMO_MAC, timeoutMs: BOOT_TIMEOUT_MS });
      if (run.outcome !== 'marker') {
        const last = run.events.at(-1);
        throw new Error(`${stack.name}: boot ended with ${run.outcome} at ${run.endedMs} ms (${last?.stage}: ${last?.line ?? ''})`);
      }
      return { markerMs: run.markerMs!, dhcpMs: run.events.find((e) => e.stage === BootStage.Dhcp)?.atMs ?? Number.NaN };
    } finally {
      await lab.removeTap(tap);
    }
  } finally {
    await stack.stop();
  }
}

async function main(): Promise<number> {
  const s = readSettings();
  const workDir = await mkdtemp(join(tmpdir(), 'diskless-bench-boot-'));
  const lab = new Lab({ namespace: s.namespace, tapPrefix: 'bt', stateDir: join(workDir, 'lab') });
  let failed = false;
  const results = new Map<string, Sample[]>();
  const broken = new Map<StackKey, string>();
  const onSignal = () => void lab.down().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await lab.down();
    await lab.up();
    const stacks = await makeStacks(lab, workDir, s);
    console.log(`boot benchmark: power-on -> DISKLESS-OK, ${s.runs} run(s) per stack and scenario, stacks alternating (QEMU TCG, e1000 iPXE ROM, ${LAB_DEMO_MAC})`);
    for (const scenario of s.scenarios) {
      // A later boot needs a lease from an earlier one: warm up once when the first-boot scenario did not run.
      if (scenario === 'later' && !s.scenarios.includes('first')) {
        for (const [key, stack] of stacks) await bootOnce(lab, stack, false).catch((err: Error) => broken.set(key, err.message));
      }
      for (let run = 0; run < s.runs; run++) {
        for (const [key, stack] of stacks) {
          if (broken.has(key)) continue;
          try {
            const sample = await bootOnce(lab, stack, scenario === 'first');
            const id = `${scenario}/${key}`;
            results.set(id, [...(results.get(id) ?? []), sample]);
            console.log(`  ${scenario.padEnd(5)} run ${run + 1}/${s.runs}  ${stack.name.padEnd(26)} marker ${sec(sample.markerMs)} s  (DHCP done ${sec(sample.dhcpMs)} s)`);
          } catch (err) {
            broken.set(key, (err as Error).message);
            failed = true;
            console.log(`  ${stack.name}: ${(err as Error).message.split('\n')[0]} (no further runs of it)`);
          }
        }
      }
    }
    console.log('');
    console.log(`${'scenario'.padEnd(34)} ${'stack'.padEnd(26)} ${'median'.padStart(6)} ${'min'.padStart(6)} ${'max'.padStart(6)}  ${'DHCP'.padStart(6)}  ours/x`);
    for (const scenario of s.scenarios) {
      const ours = results.get(`${scenario}/diskless`);
      for (const [key, stack] of stacks) {
        const samples = results.get(`${scenario}/${key}`);
        const m = samples?.map((x) => x.markerMs);
        const ratio = key !== 'diskless' && ours && m ? `${(median(ours.map((x) => x.markerMs)) / median(m)).toFixed(2)}x` : '';
        console.log(
          `${SCENARIO_LABEL[scenario].padEnd(34)} ${stack.name.padEnd(26)} ${sec(m && median(m))} ${sec(m && Math.min(...m))} ${sec(m && Math.max(...m))}  ${sec(samples && median(samples.map((x) => x.dhcpMs)))}  ${ratio}`,
        );
      }
    }
    for (const [key, why] of broken) console.log(`not measured: ${key}: ${why.split('\n')[0]}`);
    console.log('goal: ours/tuned <= 1.00x and ours/untuned <= 0.20x, in both scenarios');
  } catch (err) {
    failed = true;
    console.error(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await lab.down();
    await rm(workDir, { recursive: true, force: true });
  }
  return failed || broken.size > 0 ? 1 : 0;
}

process.exitCode = await main();
