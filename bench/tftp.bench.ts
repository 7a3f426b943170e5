/**
 * `npm run bench:tftp` (root): a 64 MiB file fetched with Debian's atftp client
 * (`--option "blksize 1468" --option "windowsize W"`) from our TftpServer and from atftpd,
 * each running in its own network namespace joined to the client's by a veth pair (MTU 1500,
 * so blksize 1468 fills a frame). For W in 1/4/16/64, RUNS runs each, alternating ours and
 * the peer; prints the median seconds and the ratio ours speed / atftpd speed (goal >= 1.0).
 * Every download is checked (size and SHA-256) against the source.
 *
 * Also prints the CPU time (user + system, from /proc) each server spent per run: our speed at
 * small windows partly comes from busy-polling for the client's ACK (TftpServer
 * `busyPollMicros`), which costs CPU; `--busy-poll-us 0` measures without it, `--transport
 * dgram` measures the node:dgram fallback.
 *
 * Usage: node dist/bench/tftp.bench.js [--runs N] [--windows 1,4,16,64] [--busy-poll-us N] [--transport native|dgram]
 * Internal: node dist/bench/tftp.bench.js --serve ROOT ADDRESS PORT [BUSY_POLL_US] [TRANSPORT] (our server, in the namespace)
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createVethPair, deleteNamespace, createNamespace, ipIn } from '../src/lab/netns.js';
import { silentLogger } from '../src/observe/logger.js';
import { Metrics } from '../src/observe/metrics.js';
import { TftpServer } from '../src/services/tftp/tftp-server.js';
import { median, cpuSeconds, waitForLine } from './bench-support.js';

const execFileP = promisify(execFile);
const NS_SERVER = 'dt-bsrv';
const NS_CLIENT = 'dt-bcli';
const VETH_SERVER = 'dt-bv0';
const VETH_CLIENT = 'dt-bv1';
const SERVER_ADDRESS = '10.213.5.1';
const CLIENT_ADDRESS = '10.213.5.2';
const OURS_PORT = 1069;
const PEER_PORT = 2069;
const FILE_SIZE = 64 * 1024 * 1024;
const BLOCK_SIZE = 1468;

async function serve(root: string, address: string, port: number, busyPollMicros: number | undefined, transport: 'native' | 'dgram' | undefined): Promise<void> {
  const server = new TftpServer({ root, address, port, maxBlockSize: BLOCK_SIZE, maxWindowSize: 64, busyPollMicros, transport, log: silentLogger(), metrics: new Metrics() });
  await server.start();
  process.stdout.write('listening\n');
  const stop = () => void server.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}



/** CPU seconds (user + system) a process has used so far, from /proc/PID/stat. */

/** The server process inside `ip netns exec` (same pid: ip execs it). */
async function fetchOnce(port: number, windowSize: number, local: string, expectedSha: string, serverPid: number, cpu: number[]): Promise<number> {
  rmSync(local, { force: true });
  const cpuBefore = cpuSeconds(serverPid);
  const args = ['netns', 'exec', NS_CLIENT, 'atftp', '--option', `blksize ${BLOCK_SIZE}`, '--option', `windowsize ${windowSize}`, '--get', '-r', 'big', '-l', local, SERVER_ADDRESS, String(port)];
  const started = performance.now();
  await execFileP('ip', args, { timeout: 120_000 });
  const seconds = (performance.now() - started) / 1000;
  cpu.push(cpuSeconds(serverPid) - cpuBefore);
  const got = readFileSync(local);
  const sha = createHash('sha256').update(got).digest('hex');
  if (got.length !== FILE_SIZE || sha !== expectedSha) throw new Error(`port ${port} W=${windowSize}: downloaded ${got.length} bytes, sha ${sha}`);
  return seconds;
}

async function bench(runs: number, windows: readonly number[], serveArgs: readonly string[]): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'dt-tftp-bench-'));
  const root = join(work, 'root');
  const children: ChildProcess[] = [];
  try {
    await deleteNamespace(NS_SERVER);
    await deleteNamespace(NS_CLIENT);
    await createNamespace(NS_SERVER);
    await createNamespace(NS_CLIENT);
    await createVethPair(VETH_SERVER, VETH_CLIENT, NS_SERVER, NS_CLIENT);
    await ipIn(NS_SERVER, 'addr', 'add', `${SERVER_ADDRESS}/24`, 'dev', VETH_SERVER);
    await ipIn(NS_CLIENT, 'addr', 'add', `${CLIENT_ADDRESS}/24`, 'dev', VETH_CLIENT);
    await execFileP('mkdir', ['-p', root]);
    const data = randomBytes(FILE_SIZE);
    writeFileSync(join(root, 'big'), data);
    const sha = createHash('sha256').update(data).digest('hex');

    const ours = spawn('ip', ['netns', 'exec', NS_SERVER, process.execPath, fileURLToPath(import.meta.url), '--serve', root, SERVER_ADDRESS, String(OURS_PORT), ...serveArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(ours);
    await waitForLine(ours, 'listening', 10_000);
    const peer = spawn('ip', ['netns', 'exec', NS_SERVER, 'atftpd', '--daemon', '--no-fork', '--port', String(PEER_PORT), '--bind-address', SERVER_ADDRESS, '--user', 'root.root', '--logfile', '/dev/null', root], { stdio: 'ignore' });
    children.push(peer);
    await new Promise((r) => setTimeout(r, 500));

    const local = join(work, 'out');
    const rows: string[] = [];
    console.log(`TFTP ${FILE_SIZE / 1048576} MiB, atftp client, blksize ${BLOCK_SIZE}, veth between namespaces, ${runs} runs each, alternating; server options: ${serveArgs.join(' ') || 'defaults'}`);
    for (const w of windows) {
      const times = { ours: [] as number[], peer: [] as number[] };
      const cpu = { ours: [] as number[], peer: [] as number[] };
      for (let i = 0; i < runs; i++) {
        times.ours.push(await fetchOnce(OURS_PORT, w, local, sha, ours.pid!, cpu.ours));
        times.peer.push(await fetchOnce(PEER_PORT, w, local, sha, peer.pid!, cpu.peer));
      }
      const o = median(times.ours);
      const p = median(times.peer);
      const row = `| ${String(w).padStart(2)} | ${o.toFixed(2).padStart(6)} | ${p.toFixed(2).padStart(6)} | ${(p / o).toFixed(2).padStart(5)}x | ${median(cpu.ours).toFixed(2)} / ${median(cpu.peer).toFixed(2)} | ours ${times.ours.map((t) => t.toFixed(2)).join(' ')} / atftpd ${times.peer.map((t) => t.toFixed(2)).join(' ')} |`;
      rows.push(row);
      console.log(row);
    }
    console.log('\n| W | ours s | atftpd s | ratio (ours speed / atftpd speed) | server CPU s, ours / atftpd | runs |\n|---|---|---|---|---|---|\n' + rows.join('\n'));
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await deleteNamespace(NS_SERVER).catch(() => undefined);
    await deleteNamespace(NS_CLIENT).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

const argv = process.argv.slice(2);
if (argv[0] === '--serve') {
  const busy = argv[4] !== undefined && argv[4] !== '' ? Number(argv[4]) : undefined;
  const transport = argv[5] === 'native' || argv[5] === 'dgram' ? argv[5] : undefined;
  await serve(argv[1]!, argv[2]!, Number(argv[3]), busy, transport);
} else {
  const flag = (name: string) => (argv.indexOf(name) >= 0 ? argv[argv.indexOf(name) + 1] : undefined);
  const runs = Number(flag('--runs') ?? 3);
  const windows = (flag('--windows') ?? '1,4,16,64').split(',').map(Number);
  const busy = flag('--busy-poll-us');
  const transport = flag('--transport');
  await bench(runs, windows, busy !== undefined || transport !== undefined ? [busy ?? '', transport ?? ''] : []);
}
