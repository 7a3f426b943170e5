/**
 * iPXE boot time over AoE, our target against vblade: the same QEMU VM (TCG, SeaBIOS, the
 * e1000's iPXE ROM 1.0.0+git-20190125) sanboots the demo marker disk to DISKLESS-OK, and the
 * lab's boot timeline splits power-on → marker into stages (LAB.md §2, src/lab/boot-timeline.ts).
 *
 * How the two cases are kept equal: ONE `diskless serve` (started with `labUp`, as in
 * test/e2e/aoe-boot.test.ts) does DHCP, TFTP, HTTP and router advertisements (RA on) for both,
 * and vblade runs beside it on the same lab bridge for the whole run. The server knows two
 * nodes that differ only in MAC and in the target their iPXE script names:
 *   - ours:   `boot: sanboot`, `san: aoe`: the server's own script, `sanboot aoe:e7.3`, served
 *             by our AoE target from the node's writable clone of golden@base in the embedded
 *             pool (golden imported with `source: demo`);
 *   - vblade: `boot: script` with the same lines naming `aoe:e7.4`, served by
 *             `vblade 7 4 br0 FILE`, FILE a raw 64 MiB image written by the same writeDemoDisk.
 * Both targets are up during every boot, so each boot sees the same segment; each answers
 * only its own shelf.slot. After the runs, with the server stopped, the clone's SHA-256 is
 * checked against the raw file's: both targets served the same bytes (and nothing wrote).
 * Two MACs rather than one because the node's script is what names the target; each node
 * boots once unmeasured first, so every measured boot is a "later boot" (lease known, page
 * cache warm) for both.
 *
 * Runs alternate ours, vblade within each round (default 3 rounds). A tcpdump on the bridge
 * (running in both cases) records each boot's AoE frames: which requests iPXE sent and the
 * request → answer time of each, summed as the "target time" of the boot. iPXE has one AoE
 * request in flight and asks 1-2 sectors per request, and a boot to the MBR marker reads a
 * handful of sectors, so the target's share of the boot is a few round trips, well under the
 * noise of a ~3.3 s TCG boot: the difference in boot time is expected to be small and is
 * reported as measured; the target time shows the targets' own difference.
 *
 * Usage (root; ~30 s for 3 rounds on the 2-core lab machine):
 *   node dist/bench/aoe-boot-time.js [--runs N]
 * Progress goes to stderr, the markdown table to stdout. `aoeBootTimes(runs)` returns the same
 * table (for bench/aoe.bench.ts). /tmp/zfs-tests.lock is held for the whole measurement, unless
 * an ancestor process (`flock /tmp/zfs-tests.lock node ...`) already holds it.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { labUp } from '../src/cli/lab-command.js';
import { BootStage, type BootEvent } from '../src/lab/boot-timeline.js';
import { Lab } from '../src/lab/lab.js';
import { DaemonProcess } from '../src/lab/peers/daemon-process.js';
import { runBoot } from '../src/lab/run-boot.js';
import { DEMO_DISK_SIZE, DEMO_MARKER, writeDemoDisk } from '../src/store/demo-disk.js';
import { EmbeddedStorageDriver } from '../src/store/embedded/embedded-storage-driver.js';
import { median } from './bench-support.js';

const NAMESPACE = 'dl-aoe-boottime';
const LOCK_FILE = '/tmp/zfs-tests.lock';
const BOOT_TIMEOUT_MS = 60_000;
const SHELF = 7;
/** EtherType of ATA over Ethernet (AoE r11 §2). */
const ETHERTYPE_AOE = '0x88a2';

type Who = 'ours' | 'vblade';
const TARGETS: Record<Who, { readonly node: string; readonly mac: string; readonly slot: number }> = {
  ours: { node: 'aoe-ours', mac: '52:54:00:ae:b0:01', slot: 3 },
  vblade: { node: 'aoe-vblade', mac: '52:54:00:ae:b0:02', slot: 4 },
};
const label = (who: Who) => `e${SHELF}.${TARGETS[who].slot}`;

/** The stages a BIOS AoE sanboot reaches, in order (the e2e test asserts the same list). */
const STAGES = [BootStage.Firmware, BootStage.Ipxe, BootStage.Nic, BootStage.Dhcp, BootStage.Script, BootStage.San, BootStage.Marker] as const;

interface Sample {
  /** ms after power-on at which each stage was reached. */
  readonly at: ReadonlyMap<BootStage, number>;
  readonly aoe: AoeExchange;
}

/**
 * The vblade node's script: the lines our server writes for an AoE sanboot (src/control/ipxe-script.ts),
 * naming vblade's shelf.slot, so both VMs run the same iPXE commands.
 */
function vbladeScript(): string {
  const uri = `aoe:${label('vblade')}`;
  return ['#!ipxe', `echo diskless: node ${TARGETS.vblade.node} booting a raw image file from ${uri} (vblade)`, `sanboot ${uri} || goto failed`, 'exit', ':failed', 'echo sanboot failed', 'exit 1'].join('\n');
}

/**
 * Holds /tmp/zfs-tests.lock until the returned function is called: a `flock LOCK cat` child
 * keeps it, and lets go when its stdin closes (also if this process dies). No-op when an
 * ancestor already holds it (flock locks conflict between open files, so taking it again here
 * would wait forever).
 */
async function holdBenchLock(log: (line: string) => void): Promise<() => Promise<void>> {
  if (await ancestorHoldsLock(LOCK_FILE)) return async () => undefined;
  const child = spawn('flock', [LOCK_FILE, '-c', 'echo locked; exec cat'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = setTimeout(() => log(`waiting for ${LOCK_FILE} ...`), 1000);
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`flock ${LOCK_FILE} exited with ${code} before taking the lock`)));
    });
  } finally {
    clearTimeout(waiting);
  }
  return async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.stdin.end();
    await exited;
  };
}

/** True when a process above this one holds a flock(2) lock on `path` (/proc/locks). */
async function ancestorHoldsLock(path: string): Promise<boolean> {
  const inode = await stat(path).then((s) => s.ino, () => undefined);
  if (inode === undefined) return false;
  const holders = new Set(
    (await readFile('/proc/locks', 'utf8'))
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      // "1: FLOCK  ADVISORY  WRITE 1234 00:1f:5678 0 EOF"; waiters have "->" in field 1.
      .filter((f) => f[1] === 'FLOCK' && f[5]?.endsWith(`:${inode}`))
      .map((f) => Number(f[4])),
  );
  for (let pid = process.ppid; pid > 1; ) {
    if (holders.has(pid)) return true;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  }
  return false;
}

/** One AoE frame seen on the bridge: capture time (µs), MACs, its first SNAP_LENGTH bytes. */
interface AoeFrame {
  readonly atUs: number;
  readonly src: string;
  readonly dst: string;
  readonly head: Buffer;
}

/** Bytes of each frame tcpdump keeps: Ethernet (14) + AoE (10) + ATA (12) headers, with room. */
const SNAP_LENGTH = 64;
/** Offsets in a frame (Ethernet header included): AoE r11 §3 (header), §3.1 (ATA command). */
const AoeOffset = { command: 19, sectorCount: 26, ataCommand: 27, lba: 28 } as const;
const AoeCommand = { ata: 0, queryConfig: 1 } as const;
/** ATA commands iPXE sends (ATA/ATAPI-7): READ SECTORS (EXT), IDENTIFY DEVICE. */
const AtaCommand = { read: 0x20, readExt: 0x24, identify: 0xec } as const;

/**
 * tcpdump on the bridge for the AoE frames of one boot: header lines (`-tt -e`: time, MACs)
 * and the first SNAP_LENGTH bytes in hex (`-xx`). Start before the boot, stop after.
 */
class AoeCapture {
  readonly #daemon: DaemonProcess;

  private constructor(daemon: DaemonProcess) {
    this.#daemon = daemon;
  }

  static async start(lab: Lab): Promise<AoeCapture> {
    const args = ['-i', lab.bridge, '-nn', '-e', '-tt', '-xx', '-s', String(SNAP_LENGTH), '-l', '--immediate-mode', 'ether', 'proto', ETHERTYPE_AOE];
    const daemon = new DaemonProcess('tcpdump', lab.spawn('tcpdump', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    await daemon.waitReady(() => daemon.output.includes('listening on'), 10_000);
    return new AoeCapture(daemon);
  }

  /** Stops tcpdump and returns the frames it printed. */
  async stop(): Promise<AoeFrame[]> {
    await this.#daemon.stop('SIGTERM', 2000);
    const frames: AoeFrame[] = [];
    let hex = '';
    let header: RegExpExecArray | null = null;
    const flush = () => {
      if (header) frames.push({ atUs: Math.round(Number(header[1]) * 1e6), src: header[2]!, dst: header[3]!, head: Buffer.from(hex, 'hex') });
      header = null;
      hex = '';
    };
    for (const line of this.#daemon.output.split('\n')) {
      const h = /^(\d+\.\d+) ([0-9a-f:]{17}) > ([0-9a-f:]{17}),/.exec(line);
      if (h) {
        flush();
        header = h;
      } else if (header) {
        const data = /^\s+0x[0-9a-f]+:\s+((?:[0-9a-f]{2,4}\s?)+)/.exec(line);
        if (data) hex += data[1]!.replace(/\s/g, '');
      }
    }
    flush();
    return frames;
  }
}

/** What one boot's AoE exchange with the VM `mac` was. */
interface AoeExchange {
  readonly requests: number;
  readonly answers: number;
  /** Request kinds in order, e.g. `config, identify, read 1@0` (sectors@LBA). */
  readonly kinds: string;
  /** Sectors per READ request (the largest seen). */
  readonly sectorsPerRead: number;
  /** Sum over requests of request → answer time on the bridge: the target's share of the boot. */
  readonly targetUs: number;
  /** Request → answer time of each answered request, in request order (µs). */
  readonly latenciesUs: readonly number[];
}

/** Pure: reads the exchange from the captured frames. iPXE has one request in flight, so each answer pairs with the request before it. */
function summarize(frames: readonly AoeFrame[], mac: string): AoeExchange {
  let requests = 0;
  let answers = 0;
  let sectorsPerRead = 0;
  let targetUs = 0;
  let pending: number | undefined;
  const kinds: string[] = [];
  const latenciesUs: number[] = [];
  for (const f of frames) {
    if (f.src === mac) {
      requests++;
      pending = f.atUs;
      const command = f.head[AoeOffset.command];
      const ata = f.head[AoeOffset.ataCommand];
      if (command === AoeCommand.queryConfig) kinds.push('config');
      else if (command === AoeCommand.ata && ata === AtaCommand.identify) kinds.push('identify');
      else if (command === AoeCommand.ata && (ata === AtaCommand.read || ata === AtaCommand.readExt)) {
        const count = f.head[AoeOffset.sectorCount] ?? 0;
        // LBA bytes 0..5, little-endian (AoE r11 §3.1); a boot reads near the start, so 32 bits suffice.
        kinds.push(`read ${count}@${f.head.readUInt32LE(AoeOffset.lba)}`);
        sectorsPerRead = Math.max(sectorsPerRead, count);
      } else kinds.push(`cmd ${command}/0x${(ata ?? 0).toString(16)}`);
    } else if (f.dst === mac) {
      answers++;
      if (pending !== undefined) {
        targetUs += f.atUs - pending;
        latenciesUs.push(f.atUs - pending);
      }
      pending = undefined;
    }
  }
  return { requests, answers, kinds: kinds.join(', '), sectorsPerRead, targetUs, latenciesUs };
}

/** One boot of `who`'s node to the marker; throws with the console's tail if it does not get there. */
async function bootOnce(lab: Lab, who: Who): Promise<Sample> {
  const { mac } = TARGETS[who];
  const capture = await AoeCapture.start(lab);
  let frames: AoeFrame[] | undefined;
  try {
    const tap = await lab.addTap();
    try {
      const run = await runBoot({ namespace: lab.namespace, tap, mac, timeoutMs: BOOT_TIMEOUT_MS });
      frames = await capture.stop();
      if (run.outcome !== 'marker') {
        const tail = run.transcript.map((c) => c.text).join('').slice(-1500);
        throw new Error(`${who} (${label(who)}): boot ended with ${run.outcome} at ${run.endedMs} ms: ${run.failure?.line ?? ''}\n${tail}`);
      }
      return { at: new Map(run.events.map((e: BootEvent) => [e.stage, e.atMs])), aoe: summarize(frames, mac) };
    } finally {
      await lab.removeTap(tap);
    }
  } finally {
    if (frames === undefined) await capture.stop();
  }
}

async function sha256File(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** SHA-256 of a volume in the embedded pool (the server must be stopped). */
async function sha256Volume(pool: string, volume: string): Promise<string> {
  const driver = await EmbeddedStorageDriver.open({ pool });
  try {
    const dev = await driver.open(volume, { readOnly: true });
    try {
      const h = createHash('sha256');
      const piece = Buffer.alloc(1024 * 1024);
      for (let at = 0; at < dev.size; at += piece.length) {
        const part = piece.subarray(0, Math.min(piece.length, dev.size - at));
        await dev.readInto(at, part);
        h.update(part);
      }
      return h.digest('hex');
    } finally {
      await dev.close();
    }
  } finally {
    await driver.close();
  }
}

const sec = (ms: number) => (ms / 1000).toFixed(2);
const msOf = (ms: number) => ms.toFixed(0);

/** Median of one stage's time over the samples, or of the step from `from` to `to`. */
function stageMedian(samples: readonly Sample[], to: BootStage, from?: BootStage): number {
  return median(samples.map((s) => s.at.get(to)! - (from === undefined ? 0 : s.at.get(from)!)));
}

/** The request sequence most boots of a target showed (they are normally all the same). */
function usualKinds(samples: readonly Sample[]): string {
  const count = new Map<string, number>();
  for (const s of samples) count.set(s.aoe.kinds, (count.get(s.aoe.kinds) ?? 0) + 1);
  const [kinds, n] = [...count].sort((a, b) => b[1] - a[1])[0]!;
  return n === samples.length ? kinds : `${kinds} (in ${n} of ${samples.length} boots)`;
}

/** Median request → answer time of the i-th request over the boots, for each i (µs). */
function perRequest(samples: readonly Sample[]): string {
  const n = Math.min(...samples.map((s) => s.aoe.latenciesUs.length));
  return Array.from({ length: n }, (_, i) => median(samples.map((s) => s.aoe.latenciesUs[i]!)).toFixed(0)).join(', ');
}

/** The markdown report: a summary row per target, the stage split, the AoE requests, notes. */
function report(results: Record<Who, Sample[]>, runs: number, sameBytes: string): string {
  const o = results.ours;
  const v = results.vblade;
  const targetUs = (s: readonly Sample[]) => median(s.map((x) => x.aoe.targetUs));
  // Over every request of every boot: one slow answer moves a boot's sum, not this.
  const requestUs = (s: readonly Sample[]) => median(s.flatMap((x) => x.aoe.latenciesUs));
  const row = (who: Who, target: string, disk: string) => {
    const s = results[who];
    const marker = s.map((x) => x.at.get(BootStage.Marker)!);
    return [
      target,
      disk,
      s.length,
      `${sec(median(marker))} (${sec(Math.min(...marker))}–${sec(Math.max(...marker))})`,
      sec(stageMedian(s, BootStage.Script)),
      msOf(stageMedian(s, BootStage.San, BootStage.Script)),
      msOf(stageMedian(s, BootStage.Marker, BootStage.San)),
      msOf(stageMedian(s, BootStage.Marker, BootStage.Script)),
      `${median(s.map((x) => x.aoe.requests))} / ${median(s.map((x) => x.aoe.answers))}`,
      Math.max(...s.map((x) => x.aoe.sectorsPerRead)),
      (targetUs(s) / 1000).toFixed(2),
      requestUs(s).toFixed(0),
    ].join(' | ');
  };
  const stageRows = STAGES.map((stage, i) => {
    const prev = i === 0 ? undefined : STAGES[i - 1]!;
    const cell = (s: Sample[]) => `${sec(stageMedian(s, stage))} | ${msOf(stageMedian(s, stage, prev))}`;
    return `| ${stage} | ${cell(o)} | ${cell(v)} |`;
  });
  const kindsOurs = usualKinds(o);
  const kindsVblade = usualKinds(v);
  const markerRatio = stageMedian(o, BootStage.Marker) / stageMedian(v, BootStage.Marker);
  const aoeDiff = stageMedian(o, BootStage.Marker, BootStage.Script) - stageMedian(v, BootStage.Marker, BootStage.Script);
  return [
    `### iPXE sanboot over AoE: power-on → ${DEMO_MARKER}, ours vs vblade (${runs} run(s) each, alternating)`,
    '',
    'Same VM (QEMU TCG, SeaBIOS, e1000 iPXE ROM 1.0.0+git-20190125), same `diskless serve` for DHCP/TFTP/HTTP/RA (RA on) in both; only the AoE target differs. Medians.',
    '',
    '| AoE target | disk served | boots | power-on → marker, s (min–max) | script fetched at, s | script → san, ms | san → marker, ms | script → marker, ms | AoE requests / answers per boot | sectors per read | target time per boot, ms | request → answer, µs |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    `| ${row('ours', `diskless serve (${label('ours')})`, "embedded-pool clone of golden@base (a node's clone)")} |`,
    `| ${row('vblade', `vblade ${SHELF} ${TARGETS.vblade.slot} br0 (${label('vblade')})`, 'raw 64 MiB image file')} |`,
    '',
    `ours / vblade: power-on → marker ${markerRatio.toFixed(3)}x; script → marker ${aoeDiff >= 0 ? '+' : ''}${msOf(aoeDiff)} ms; target time per boot ${(targetUs(o) / targetUs(v)).toFixed(2)}x (${(targetUs(o) / 1000).toFixed(2)} vs ${(targetUs(v) / 1000).toFixed(2)} ms); request → answer ${(requestUs(o) / requestUs(v)).toFixed(2)}x (${requestUs(o).toFixed(0)} vs ${requestUs(v).toFixed(0)} µs).`,
    '',
    '| stage | ours at, s | ours step, ms | vblade at, s | vblade step, ms |',
    '|---|---|---|---|---|',
    ...stageRows,
    '',
    kindsOurs === kindsVblade ? `- AoE requests of each boot, both targets: ${kindsOurs} (read N@LBA: N sectors at LBA).` : `- AoE requests of each boot: ours ${kindsOurs}; vblade ${kindsVblade} (read N@LBA: N sectors at LBA).`,
    `- Request → answer per request, in that order, median over the boots (µs): ours ${perRequest(o)}; vblade ${perRequest(v)}.`,
    '- Target time: request → answer on the bridge (tcpdump), summed over the boot\'s requests; iPXE keeps one request in flight, so this is all the time the boot spent waiting for the target. One slow answer (a few ms, on this shared 2-core machine) moves a boot\'s sum; the request → answer column, the median over all requests, does not. The rest of script → marker is iPXE and the BIOS running under TCG (including printing to the emulated serial port the stage times are read from): differences of a few ms in the stage columns are noise.',
    '- script → san: iPXE opens the SAN device (Query Config, ATA IDENTIFY) and reads its first sectors; san → marker: the BIOS boots the drive through iPXE\'s INT 13h and the MBR prints the marker.',
    `- ${sameBytes}`,
    '- Each node booted once unmeasured first, so every measured boot has a lease and a warm page cache; tcpdump ran on the bridge during every boot.',
    '',
  ].join('\n');
}

/**
 * Brings up the lab (namespace, our server, vblade), boots each node once to warm up, then
 * `runs` rounds of one boot per target (ours first), and tears everything down, also on
 * failure. Holds /tmp/zfs-tests.lock meanwhile. Returns the markdown tables; progress lines go
 * to `log` (default stderr). Root only; ~8 s per round plus ~15 s setup and warm-up on the lab machine.
 * Throws if a boot misses the marker or the two disks differ.
 */
export async function aoeBootTimes(runs: number, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<string> {
  if (!Number.isInteger(runs) || runs < 1 || runs > 50) throw new RangeError(`runs: ${runs} is not an integer 1..50`);
  const release = await holdBenchLock(log);
  const workDir = await mkdtemp(join(tmpdir(), `${NAMESPACE}-`));
  const dataDir = join(workDir, 'data');
  const pool = join(dataDir, 'pool');
  const rawImage = join(workDir, 'vblade-disk.img');
  let lab = new Lab({ namespace: NAMESPACE });
  let vblade: DaemonProcess | undefined;
  const onSignal = () => {
    log('aoe-boot-time: interrupted; stopping the lab (the boot under way ends with an error)');
    void lab.down().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await lab.down();
    await writeDemoDisk(rawImage, DEMO_DISK_SIZE);
    const doc = {
      server: { address: '10.77.0.1', dataDir },
      iscsi: { enabled: false },
      ra: { enabled: true },
      storage: { driver: 'embedded', pool },
      aoe: { enabled: true, interfaces: ['br0'], exports: [{ volume: TARGETS.ours.node, shelf: SHELF, slot: TARGETS.ours.slot }] },
      nodes: [
        { name: TARGETS.ours.node, mac: TARGETS.ours.mac, boot: 'sanboot', san: 'aoe', volume: TARGETS.ours.node },
        { name: TARGETS.vblade.node, mac: TARGETS.vblade.mac, boot: 'script', script: vbladeScript() },
      ],
      volumes: [
        { name: 'golden', source: 'demo', readOnly: true },
        { name: TARGETS.ours.node, clone: 'golden@base' },
      ],
    };
    const configPath = join(workDir, 'diskless.yaml');
    await mkdir(dataDir, { recursive: true });
    await writeFile(configPath, stringify(doc));
    log(`aoe-boot-time: starting diskless serve (${label('ours')}) and vblade (${label('vblade')}) in ${NAMESPACE}`);
    ({ lab } = await labUp({ namespace: NAMESPACE, config: configPath, out: new Writable({ write: (_c, _e, cb) => cb() }) }));
    const vb = new DaemonProcess('vblade', lab.spawn('vblade', [String(SHELF), String(TARGETS.vblade.slot), lab.bridge, rawImage], { stdio: ['ignore', 'pipe', 'pipe'] }));
    vblade = vb;
    await vb.waitReady(() => /pid \d+/.test(vb.output), 10_000);

    for (const who of ['ours', 'vblade'] as const) {
      const s = await bootOnce(lab, who);
      log(`  warm-up ${who.padEnd(6)} marker ${sec(s.at.get(BootStage.Marker)!)} s`);
    }
    const results: Record<Who, Sample[]> = { ours: [], vblade: [] };
    for (let run = 0; run < runs; run++) {
      for (const who of ['ours', 'vblade'] as const) {
        const s = await bootOnce(lab, who);
        results[who].push(s);
        const at = (stage: BootStage) => sec(s.at.get(stage)!);
        log(`  run ${run + 1}/${runs} ${who.padEnd(6)} marker ${at(BootStage.Marker)} s (dhcp ${at(BootStage.Dhcp)}, script ${at(BootStage.Script)}, san ${at(BootStage.San)}; ${s.aoe.requests} AoE requests, target ${(s.aoe.targetUs / 1000).toFixed(2)} ms)`);
      }
    }

    await vb.stop('SIGTERM', 2000);
    await lab.down();
    const [clone, raw] = [await sha256Volume(pool, TARGETS.ours.node), await sha256File(rawImage)];
    if (clone !== raw) throw new Error(`the disks differ: clone ${TARGETS.ours.node} sha256 ${clone}, raw image ${raw}`);
    return report(results, runs, `Same bytes: after the runs, the clone and the raw file both have SHA-256 ${raw.slice(0, 16)}… (checked with the server stopped).`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await vblade?.stop('SIGKILL', 0);
    await lab.down();
    await rm(workDir, { recursive: true, force: true });
    await release();
  }
}

const USAGE = 'usage: node dist/bench/aoe-boot-time.js [--runs N]   (root; N rounds of one boot per target, default 3)';

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  let runs = 3;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--runs' && args[i + 1] !== undefined) runs = Number(args[++i]);
    else {
      console.error(args[i] === '--help' || args[i] === '-h' ? USAGE : `unknown option ${args[i]}\n${USAGE}`);
      return args[i] === '--help' || args[i] === '-h' ? 0 : 2;
    }
  }
  try {
    process.stdout.write(await aoeBootTimes(runs));
    return 0;
  } catch (err) {
    console.error(err);
    return 1;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = await main();
