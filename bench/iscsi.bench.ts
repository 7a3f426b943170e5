/**
 * `npm run bench:iscsi`: our iSCSI target against tgt on the same LUN file, on loopback,
 * alternating ours and tgt within each workload (RUNS runs each, default 1):
 *
 * - 128 KiB sequential read qd32: `iscsi-perf -t SECONDS -b 256 -m 32 URL`
 * - 4 KiB random read qd32:       `iscsi-perf -t SECONDS -b 8 -m 32 -r URL`
 * - 4 KiB strided write qd32:     `qemu-img bench -f raw -t none -n -w -c COUNT -d 32 -s 4k -S STRIDE URL`
 *   (STRIDE = 4097 × 4 KiB: odd in 4 KiB units, so the offsets (taken modulo the image size)
 *   visit every 4 KiB block of the LUN in a scattered order)
 * - 64 KiB sequential write qd16: `qemu-img bench -f raw -t none -n -w -c COUNT -d 16 -s 64k URL`
 *
 * Prints MB/s (10^6 bytes), IOPS, the ratio ours/tgt and each server's CPU seconds per run.
 * Then the memory check: 100 normal sessions logged in and each doing one 128 KiB read, kept
 * open, and the server's VmRSS (/proc/PID/status) before and with them (goal <= 150 MiB).
 *
 * Our target runs in a child process, so its CPU and RSS are its own: `diskless export iscsi
 * FILE --iqn IQN --listen 127.0.0.1:14200 --lun 0`, or with `--serve-inline` this file's
 * `--serve` mode (an IscsiServer over a FileBlockDevice, for trying server variants). tgt is
 * `tgtd -f -C 23 --iscsi portal=127.0.0.1:14201` with the same file as LUN 1.
 *
 * Usage: node dist/bench/iscsi.bench.js [--runs N] [--seconds S] [--size-mib M]
 *   [--only read128k,rand4k,write4k,write64k,rss] [--cpu-prof DIR] [--no-tgt] [--serve-inline]
 * Internal: node dist/bench/iscsi.bench.js --serve FILE PORT IQN
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { open } from 'node:fs/promises';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { silentLogger } from '../src/observe/logger.js';
import { Metrics } from '../src/observe/metrics.js';
import { IscsiServer } from '../src/services/iscsi/iscsi-server.js';
import { StaticTargetResolver } from '../src/services/iscsi/static-target-resolver.js';
import { FileBlockDevice } from '../src/store/file/file-block-device.js';
import { IscsiTestClient } from '../test/support/iscsi-client.js';
import { median, cpuSeconds, waitForLine, iscsiPerf, qemuBench } from './bench-support.js';

const execFileP = promisify(execFile);
const HOST = '127.0.0.1';
const OURS_PORT = 14200;
const TGT_PORT = 14201;
const TGT_CONTROL = '23';
const OURS_IQN = 'iqn.2026-11.io.diskless:bench';
const TGT_IQN = 'iqn.2026-11.io.diskless:bench-tgt';
const BLOCK = 512;
const SESSIONS = 100;
const RSS_GOAL_MIB = 150;

async function serve(file: string, port: number, iqn: string): Promise<void> {
  const handle = await open(file, 'r+');
  const size = (await handle.stat()).size;
  const device = new FileBlockDevice(handle, size, BLOCK, false, 'bench');
  const server = new IscsiServer({ address: HOST, port, log: silentLogger(), metrics: new Metrics(), targets: new StaticTargetResolver([{ name: iqn, device, readOnly: false }]) });
  await server.start();
  process.stdout.write('listening\n');
  const stop = () => void server.stop().then(() => device.close()).then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** CPU seconds (user + system) a process has used so far, from /proc/PID/stat. */

/** VmRSS of a process in MiB. */
function rssMiB(pid: number): number {
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  return kb / 1024;
}


interface Workload {
  readonly name: string;
  readonly bytes: number;
  /** Runs once against `url`; returns IOPS. */
  run(url: string): Promise<number>;
}

async function startTgt(file: string): Promise<ChildProcess> {
  const tgt = spawn('tgtd', ['-f', '-C', TGT_CONTROL, '--iscsi', `portal=${HOST}:${TGT_PORT}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  const adm = (...a: string[]) => execFileP('tgtadm', ['-C', TGT_CONTROL, '--lld', 'iscsi', ...a]);
  for (let i = 0; ; i++) {
    await new Promise((r) => setTimeout(r, 200));
    try {
      await adm('--op', 'new', '--mode', 'target', '--tid', '1', '-T', TGT_IQN);
      break;
    } catch (err) {
      if (i > 25 || tgt.exitCode !== null) throw new Error(`tgtd did not come up: ${(err as Error).message}`);
    }
  }
  await adm('--op', 'new', '--mode', 'logicalunit', '--tid', '1', '--lun', '1', '-b', file);
  await adm('--op', 'bind', '--mode', 'target', '--tid', '1', '-I', 'ALL');
  return tgt;
}

/** Logs in SESSIONS sessions, each reading 128 KiB once, and reports the server's RSS with them open. */
async function rssWithSessions(pid: number, port: number, iqn: string, lun: number): Promise<{ before: number; with: number }> {
  const before = rssMiB(pid);
  const clients: IscsiTestClient[] = [];
  try {
    for (let i = 0; i < SESSIONS; i++) {
      const c = await IscsiTestClient.connect(port, HOST);
      clients.push(c);
      const r = await c.login({ target: iqn, keys: [['MaxRecvDataSegmentLength', '262144'], ['InitialR2T', 'No'], ['ImmediateData', 'Yes'], ['MaxBurstLength', '262144']] });
      if (r.statusClass !== 0) throw new Error(`session ${i}: login status ${r.statusClass}/${r.statusDetail}`);
      const cdb = Buffer.from([0x28, 0, 0, 0, 0, i * 256, 0, 1, 0, 0]); // READ(10) 256 blocks at LBA i*256
      const lunField = BigInt(lun) << 48n;
      let got = await c.scsi(cdb, { read: 256 * BLOCK, lun: lunField });
      if (got.status === 2) got = await c.scsi(cdb, { read: 256 * BLOCK, lun: lunField }); // tgt reports a unit attention (power on) first
      if (got.status !== 0 || got.data.length !== 256 * BLOCK) throw new Error(`session ${i}: READ status ${got.status}, ${got.data.length} bytes`);
    }
    await new Promise((r) => setTimeout(r, 500));
    return { before, with: rssMiB(pid) };
  } finally {
    for (const c of clients) c.close();
  }
}

async function bench(o: { runs: number; seconds: number; sizeMiB: number; only: Set<string>; cpuProf?: string; tgt: boolean; inProcess: boolean }): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'dt-iscsi-bench-'));
  const file = join(work, 'lun.img');
  const children: ChildProcess[] = [];
  try {
    // A fully allocated file, so neither target reads holes and page cache holds all of it.
    await execFileP('dd', ['if=/dev/urandom', `of=${file}`, 'bs=1M', `count=${o.sizeMiB}`, 'status=none']);
    const nodeArgs = o.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProf] : [];
    const oursArgs = o.inProcess
      ? [fileURLToPath(import.meta.url), '--serve', file, String(OURS_PORT), OURS_IQN]
      : [join(fileURLToPath(import.meta.url), '../../src/cli/main.js'), 'export', 'iscsi', file, '--iqn', OURS_IQN, '--listen', `${HOST}:${OURS_PORT}`, '--lun', '0'];
    const ours = spawn(process.execPath, [...nodeArgs, ...oursArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(ours);
    await waitForLine(ours, 'listening', 10_000);
    const tgt = o.tgt ? await startTgt(file) : null;
    if (tgt) children.push(tgt);
    const targets = [{ name: 'ours', pid: ours.pid!, url: `iscsi://${HOST}:${OURS_PORT}/${OURS_IQN}/0` }, ...(tgt ? [{ name: 'tgt', pid: tgt.pid!, url: `iscsi://${HOST}:${TGT_PORT}/${TGT_IQN}/1` }] : [])];

    if (o.only.has('rss')) {
      // First, on fresh servers: what sessions cost, not what the throughput runs left in the heap.
      for (const t of targets) {
        const r = await rssWithSessions(t.pid, t.name === 'ours' ? OURS_PORT : TGT_PORT, t.name === 'ours' ? OURS_IQN : TGT_IQN, t.name === 'ours' ? 0 : 1);
        console.log(`${t.name}: VmRSS ${r.before.toFixed(1)} MiB idle, ${r.with.toFixed(1)} MiB with ${SESSIONS} sessions open${t.name === 'ours' ? ` (goal <= ${RSS_GOAL_MIB} MiB: ${r.with <= RSS_GOAL_MIB ? 'met' : 'NOT met'})` : ''}`);
      }
    }

    const stride = 4097 * 4096;
    const workloads: Workload[] = [
      { name: 'read128k', bytes: 131072, run: (u) => iscsiPerf(u, o.seconds, 256, false) },
      { name: 'rand4k', bytes: 4096, run: (u) => iscsiPerf(u, o.seconds, 8, true) },
      { name: 'write4k', bytes: 4096, run: (u) => qemuBench(u, 40_000 * o.seconds, 32, '4k', stride) },
      { name: 'write64k', bytes: 65536, run: (u) => qemuBench(u, 2_500 * o.seconds, 16, '64k') },
    ];
    const labels: Record<string, string> = {
      read128k: '128 KiB seq read qd32 (iscsi-perf)',
      rand4k: '4 KiB random read qd32 (iscsi-perf -r)',
      write4k: '4 KiB strided write qd32 (qemu-img bench)',
      write64k: '64 KiB seq write qd16 (qemu-img bench)',
    };
    console.log(`iSCSI on loopback, ${o.sizeMiB} MiB LUN file (page cache), ${o.runs} run(s) each, alternating ours and tgt; iscsi-perf -t ${o.seconds}`);
    const rows: string[] = [];
    for (const w of workloads) {
      if (!o.only.has(w.name)) continue;
      const iops: Record<string, number[]> = {};
      const cpu: Record<string, number[]> = {};
      for (let i = 0; i < o.runs; i++) {
        for (const t of i % 2 ? [...targets].reverse() : targets) {
          const c0 = cpuSeconds(t.pid);
          (iops[t.name] ??= []).push(await w.run(t.url));
          (cpu[t.name] ??= []).push(cpuSeconds(t.pid) - c0);
        }
      }
      const ourIops = median(iops.ours!);
      const tgtIops = iops.tgt ? median(iops.tgt) : NaN;
      const mb = (x: number) => ((x * w.bytes) / 1e6).toFixed(0);
      const row = `| ${labels[w.name]} | ${mb(ourIops)} | ${Math.round(ourIops)} | ${mb(tgtIops)} | ${Math.round(tgtIops)} | ${(ourIops / tgtIops).toFixed(2)}x | ${median(cpu.ours!).toFixed(1)} / ${cpu.tgt ? median(cpu.tgt).toFixed(1) : '-'} |`;
      rows.push(row);
      console.log(row);
    }
    if (rows.length) console.log(`ours: VmRSS ${rssMiB(ours.pid!).toFixed(1)} MiB after the runs`);
    if (rows.length) console.log(`\n| workload | ours MB/s | ours IOPS | tgt MB/s | tgt IOPS | ours/tgt | server CPU s ours / tgt |\n|---|---|---|---|---|---|---|\n${rows.join('\n')}`);
  } finally {
    const tgtRunning = children.length > 1 && children[1]!.exitCode === null;
    if (tgtRunning) {
      // tgtd ignores SIGTERM while targets exist: take ours offline and delete it first.
      const adm = (...a: string[]) => execFileP('tgtadm', ['-C', TGT_CONTROL, '--lld', 'iscsi', ...a]).catch(() => undefined);
      await adm('--op', 'delete', '--mode', 'target', '--tid', '1', '--force');
    }
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  }
}

const argv = process.argv.slice(2);
if (argv[0] === '--serve') {
  await serve(argv[1]!, Number(argv[2]), argv[3]!);
} else {
  const flag = (name: string) => (argv.indexOf(name) >= 0 ? argv[argv.indexOf(name) + 1] : undefined);
  const runs = Number(flag('--runs') ?? 1);
  const seconds = Number(flag('--seconds') ?? 5);
  const sizeMiB = Number(flag('--size-mib') ?? 256);
  const only = new Set((flag('--only') ?? 'read128k,rand4k,write4k,write64k,rss').split(','));
  const cpuProf = flag('--cpu-prof');
  if (![runs, seconds, sizeMiB].every((n) => Number.isInteger(n) && n > 0)) {
    console.error('usage: node dist/bench/iscsi.bench.js [--runs N] [--seconds S] [--size-mib M] [--only read128k,rand4k,write4k,write64k,rss] [--cpu-prof DIR] [--no-tgt] [--serve-inline]');
    process.exit(2);
  }
  await bench({ runs, seconds, sizeMiB, only, ...(cpuProf ? { cpuProf } : {}), tgt: !argv.includes('--no-tgt'), inProcess: argv.includes('--serve-inline') });
}
