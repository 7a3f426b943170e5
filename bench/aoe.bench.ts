/**
 * `npm run bench:aoe` (root): the project's AoE initiator (src/clients/aoe) reads a 256 MiB
 * file served as an AoE target by our `diskless export aoe` and by vblade, on the same file,
 * over a veth pair between two network namespaces; RUNS runs each, alternating. Prints the
 * median MB/s of each, the ratio ours / vblade (goal >= 2.0) for each storage mode, the server CPU seconds per run,
 * and the initiator's retransmissions. Every run's data is checked (SHA-256) against the file.
 *
 * Usage: node dist/bench/aoe.bench.js [--runs N] [--size-mib N] [--mtu 1500|9000] [--random] [--cold] [--window N] [--storage cache|direct|both]
 *   --storage: how both targets reach the file (default both, one after the other): `cache`
 *   through the page cache (warm: the targets' per-frame CPU decides), `direct` with O_DIRECT
 *   (ours --direct, vblade -d: every read is a disk read, and vblade makes them one at a time);
 *   --file PATH: serve this existing file instead of a new random one (e.g. a file in a
 *   zfs-fuse dataset, where every read is a FUSE round trip);
 *   --no-boot: skip the second part, the iPXE boot time over AoE, ours vs vblade with the same
 *   DHCP/TFTP/HTTP/RA (bench/aoe-boot-time.ts, ~30 s);
 *   --window: most commands the initiator keeps in flight (default 64; each target's buffer
 *   count caps it: vblade advertises 16);
 *   --random: every command-sized piece once in a random order, as many in flight as the
 *   initiator's window; --cold: the file is dropped from the page cache before each run.
 * `npm run bench:aoe-floor` measures the kernel's own cost per frame, the floor under both.
 * Internal: node dist/bench/aoe.bench.js --client IFNAME SHELF SLOT seq|random (in the client namespace;
 * prints one JSON line {seconds, bytes, sha256, retransmits, window, sectorsPerCommand})
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomFillSync } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AoeInitiator } from '../src/clients/aoe/aoe-initiator.js';
import { createNamespace, createVethPair, deleteNamespace, ipIn } from '../src/lab/netns.js';
import { cpuSeconds, median, waitForLine } from './bench-support.js';
import { aoeBootTimes } from './aoe-boot-time.js';

const NS_SERVER = 'da-bsrv';
const NS_CLIENT = 'da-bcli';
const VETH_SERVER = 'da-bv0';
const VETH_CLIENT = 'da-bv1';
const CHUNK = 4 * 1024 * 1024;
const execFileP = promisify(execFile);
/** How both targets reach the file: through the page cache, or with O_DIRECT (ours --direct, vblade -d). */
type StorageMode = 'cache' | 'direct';
const STORAGE_MODES: readonly StorageMode[] = ['cache', 'direct'];
const STORAGE_TITLES: Record<StorageMode, string> = {
  cache: 'through the page cache',
  direct: 'direct I/O, past the page cache (ours --direct, vblade -d): every read goes to the disk',
};
const here = fileURLToPath(import.meta.url);
const cli = join(here, '..', '..', 'src', 'cli', 'main.js');

interface ClientResult {
  readonly seconds: number;
  readonly bytes: number;
  readonly sha256: string;
  readonly retransmits: number;
  readonly window: number;
  readonly sectorsPerCommand: number;
}

/**
 * Client mode: connect, then read the whole device once. `seq`: in CHUNK pieces, each pipelined
 * by the initiator, hashed as they come. `random`: every command-sized piece once, in a random
 * order, `window` reads in flight, into one device-sized buffer hashed at the end.
 */
async function client(ifname: string, shelf: number, slot: number, pattern: string, window: number): Promise<void> {
  const ini = new AoeInitiator({ ifname, shelf, slot, timeoutMs: 200, tries: 20, maxOutstanding: window });
  try {
    const dev = await ini.connect();
    const total = dev.identity.sectors * 512;
    const hash = createHash('sha256');
    let seconds: number;
    if (pattern === 'random') {
      const piece = dev.sectorsPerCommand;
      const pieces = Math.ceil(dev.identity.sectors / piece);
      const order = Array.from({ length: pieces }, (_, i) => i);
      for (let i = pieces - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      const all = Buffer.allocUnsafe(total);
      let next = 0;
      const worker = async () => {
        while (next < pieces) {
          const p = order[next++]!;
          const lba = p * piece;
          await ini.readInto(lba, all.subarray(lba * 512, Math.min(total, (lba + piece) * 512)));
        }
      };
      const started = performance.now();
      await Promise.all(Array.from({ length: dev.window }, worker));
      seconds = (performance.now() - started) / 1000;
      hash.update(all);
    } else {
      const buf = Buffer.allocUnsafe(CHUNK);
      const started = performance.now();
      for (let at = 0; at < total; at += CHUNK) {
        const part = buf.subarray(0, Math.min(CHUNK, total - at));
        await ini.readInto(at / 512, part);
        hash.update(part);
      }
      seconds = (performance.now() - started) / 1000;
    }
    const r: ClientResult = { seconds, bytes: total, sha256: hash.digest('hex'), retransmits: ini.statistics().retransmits, window: dev.window, sectorsPerCommand: dev.sectorsPerCommand };
    process.stdout.write(`${JSON.stringify(r)}\n`);
  } finally {
    ini.close();
  }
}

function runClient(shelf: number, slot: number, pattern: string, window: number): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', NS_CLIENT, process.execPath, here, '--client', VETH_CLIENT, String(shelf), String(slot), pattern, String(window)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1)!) as ClientResult) : reject(new Error(`client exited ${code}: ${err}`))));
  });
}

/** Writes back and drops the file's pages (posix_fadvise DONTNEED through dd), so the next run reads the disk. */
async function dropCache(file: string): Promise<void> {
  await execFileP('sync', []);
  await execFileP('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--client') return client(args[1]!, Number(args[2]), Number(args[3]), args[4] ?? 'seq', Number(args[5] ?? 64));
  const opt = (name: string, def: number) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : def;
  };
  const runs = opt('--runs', 3);
  const sizeMiB = opt('--size-mib', 256);
  const mtu = opt('--mtu', 1500);
  const pattern = args.includes('--random') ? 'random' : 'seq';
  const cold = args.includes('--cold');
  const window = opt('--window', 64);
  const storageArg = args.indexOf('--storage');
  const storage = storageArg >= 0 ? (args[storageArg + 1] === 'both' ? STORAGE_MODES : [args[storageArg + 1] as StorageMode]) : STORAGE_MODES;
  if (!storage.every((m) => STORAGE_MODES.includes(m))) throw new Error(`--storage ${args[storageArg + 1]}: allowed: cache, direct, both`);
  const dir = mkdtempSync(join(tmpdir(), 'bench-aoe-'));
  const given = args.indexOf('--file');
  const file = given >= 0 ? args[given + 1]! : join(dir, 'disk.img');
  if (given < 0) {
    const fd = openSync(file, 'w');
    const block = Buffer.allocUnsafe(CHUNK);
    for (let i = 0; i < (sizeMiB * 1024 * 1024) / CHUNK; i++) writeSync(fd, randomFillSync(block));
    closeSync(fd);
  }
  const content = readFileSync(file);
  const expected = createHash('sha256').update(content).digest('hex');
  const fileBytes = content.length;
  for (const ns of [NS_SERVER, NS_CLIENT]) await deleteNamespace(ns);
  await createNamespace(NS_SERVER);
  await createNamespace(NS_CLIENT);
  await createVethPair(VETH_SERVER, VETH_CLIENT, NS_SERVER, NS_CLIENT);
  await ipIn(NS_SERVER, 'link', 'set', VETH_SERVER, 'mtu', String(mtu));
  await ipIn(NS_CLIENT, 'link', 'set', VETH_CLIENT, 'mtu', String(mtu));
  process.stdout.write(`bench:aoe: ${given >= 0 ? file : `${sizeMiB} MiB file`}, veth MTU ${mtu}, ${runs} run(s) each, alternating; our initiator reads the whole device ${pattern === 'random' ? 'in random order' : 'in order'}${cold ? ', the file dropped from the page cache before each run' : ''}\n`);
  const summary: string[] = [];
  try {
    for (const mode of storage) {
      process.stdout.write(`\n${STORAGE_TITLES[mode]}${mode === 'cache' ? (cold ? ' (dropped before each run: first reads wait for the disk)' : ' (the file is cached: no read waits for the disk)') : ''}\n`);
      const results: Record<'ours' | 'vblade', { mbps: number[]; cpu: number[]; retransmits: number[]; window: number; spc: number }> = {
        ours: { mbps: [], cpu: [], retransmits: [], window: 0, spc: 0 },
        vblade: { mbps: [], cpu: [], retransmits: [], window: 0, spc: 0 },
      };
      const direct = mode === 'direct';
      for (let run = 0; run < runs; run++) {
        for (const who of ['ours', 'vblade'] as const) {
          const server =
            who === 'ours'
              ? spawn('ip', ['netns', 'exec', NS_SERVER, process.execPath, cli, 'export', 'aoe', file, '--iface', VETH_SERVER, '--shelf', '1', '--slot', '1', '--state', join(dir, 'state.json'), ...(direct ? ['--direct'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] })
              : spawn('ip', ['netns', 'exec', NS_SERVER, 'vblade', ...(direct ? ['-d'] : []), '1', '2', VETH_SERVER, file], { stdio: ['ignore', 'pipe', 'pipe'] });
          try {
            await waitForLine(server, who === 'ours' ? 'serving e1.1' : 'pid', 15_000);
            if (cold) await dropCache(file);
            const cpu0 = cpuSeconds(server.pid!);
            const r = await runClient(1, who === 'ours' ? 1 : 2, pattern, window);
            if (r.sha256 !== expected) throw new Error(`${who}: data read back differs from the file (sha256 ${r.sha256} != ${expected})`);
            const res = results[who];
            res.cpu.push(cpuSeconds(server.pid!) - cpu0);
            res.mbps.push(r.bytes / 1e6 / r.seconds);
            res.retransmits.push(r.retransmits);
            res.window = r.window;
            res.spc = r.sectorsPerCommand;
            process.stdout.write(`  run ${run + 1} ${who}: ${(r.bytes / 1e6 / r.seconds).toFixed(1)} MB/s (${r.seconds.toFixed(2)} s, ${r.retransmits} retransmits)\n`);
          } finally {
            await stop(server);
          }
        }
      }
      const o = results.ours;
      const v = results.vblade;
      const ratio = median(o.mbps) / median(v.mbps);
      /** Server CPU per read answered (the file's bytes over the sectors each command carried). */
      const perAnswer = (r: { cpu: number[]; spc: number }) => ((median(r.cpu) / (fileBytes / (r.spc * 512))) * 1e6).toFixed(2);
      process.stdout.write(
        [
          '',
          '| target | MB/s (median) | server CPU s per run | server CPU µs per answer | retransmits | initiator window | sectors per command |',
          '|---|---|---|---|---|---|---|',
          `| diskless export aoe${direct ? ' --direct' : ''} | ${median(o.mbps).toFixed(1)} | ${median(o.cpu).toFixed(2)} | ${perAnswer(o)} | ${median(o.retransmits)} | ${o.window} | ${o.spc} |`,
          `| vblade${direct ? ' -d' : ''} | ${median(v.mbps).toFixed(1)} | ${median(v.cpu).toFixed(2)} | ${perAnswer(v)} | ${median(v.retransmits)} | ${v.window} | ${v.spc} |`,
          '',
        ].join('\n'),
      );
      summary.push(`ours / vblade, ${direct ? 'direct I/O (ours --direct, vblade -d)' : 'through the page cache'}: ${ratio.toFixed(2)}x (goal >= 2.0x: ${ratio >= 2 ? 'met' : 'NOT met'})`);
    }
    process.stdout.write(`\n${summary.join('\n')}\n`);
  } finally {
    for (const ns of [NS_SERVER, NS_CLIENT]) await deleteNamespace(ns);
    rmSync(dir, { recursive: true, force: true });
  }
  if (!args.includes('--no-boot')) process.stdout.write(`\n${await aoeBootTimes(runs)}\n`);
}

await main();
