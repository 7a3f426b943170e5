/**
 * `npm run bench:aoe-floor` (root): what the kernel charges per AoE frame on a veth pair with no
 * target in the way, the floor under any target's cost (ours and vblade alike). Compiles
 * bench/aoe-frame-floor.c with cc, then between two namespaces sends N frames through one
 * AF_PACKET socket (sendmmsg, 64 per call, and 1 per call) to another (recvmmsg): a 60-byte
 * request and an answer carrying one frame's sectors, at MTU 1500 (2 sectors) and 9000 (17).
 * Prints each side's CPU µs per frame. Compare with `npm run bench:aoe`'s server CPU per frame.
 *
 * Usage: node dist/bench/aoe-frame-floor.js [--frames N]
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createNamespace, createVethPair, deleteNamespace, ipIn } from '../src/lab/netns.js';
import { sectorsPerFrame } from '../src/wire/aoe/ata-command.js';
import { AOE_ATA_DATA_OFFSET } from '../src/wire/aoe/aoe-frame.js';

const NS_SEND = 'da-fsnd';
const NS_RECV = 'da-frcv';
const IF_SEND = 'da-fv0';
const IF_RECV = 'da-fv1';
const execFileP = promisify(execFile);
const source = join(fileURLToPath(import.meta.url), '..', '..', '..', 'bench', 'aoe-frame-floor.c');

interface Side {
  readonly side: 'send' | 'recv';
  readonly frames: number;
  readonly len: number;
  readonly seconds: number;
  readonly userUs: number;
  readonly sysUs: number;
}

/** One measurement: the receiver started first, then the sender; both sides' JSON lines. */
async function measure(bin: string, frames: number, len: number, batch: number): Promise<{ send: Side; recv: Side }> {
  const recv = spawn('ip', ['netns', 'exec', NS_RECV, bin, 'recv', IF_RECV, String(frames), String(len)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let recvOut = '';
  recv.stdout.on('data', (d) => (recvOut += d));
  const recvDone = new Promise<void>((resolve, reject) => recv.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`receiver exited with ${code}`)))));
  await new Promise((r) => setTimeout(r, 300));
  const { stdout } = await execFileP('ip', ['netns', 'exec', NS_SEND, bin, 'send', IF_SEND, String(frames), String(len), String(batch)]);
  await recvDone;
  return { send: JSON.parse(stdout) as Side, recv: JSON.parse(recvOut) as Side };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const i = args.indexOf('--frames');
  const frames = i >= 0 ? Number(args[i + 1]) : 1_000_000;
  const dir = mkdtempSync(join(tmpdir(), 'bench-aoe-floor-'));
  const bin = join(dir, 'aoe-frame-floor');
  await execFileP('cc', ['-O2', '-o', bin, source]);
  for (const ns of [NS_SEND, NS_RECV]) await deleteNamespace(ns);
  await createNamespace(NS_SEND);
  await createNamespace(NS_RECV);
  await createVethPair(IF_SEND, IF_RECV, NS_SEND, NS_RECV);
  const rows: string[] = [];
  try {
    for (const mtu of [1500, 9000]) {
      await ipIn(NS_SEND, 'link', 'set', IF_SEND, 'mtu', String(mtu));
      await ipIn(NS_RECV, 'link', 'set', IF_RECV, 'mtu', String(mtu));
      const answer = AOE_ATA_DATA_OFFSET + sectorsPerFrame(mtu) * 512;
      for (const [what, len, batch] of [['request', 60, 64], ['answer', answer, 64], ['answer', answer, 1]] as const) {
        const n = mtu === 9000 && what === 'answer' ? Math.floor(frames / 3) : frames;
        const r = await measure(bin, n, len, batch);
        rows.push(`| ${mtu} | ${what} | ${len} | ${batch} | ${(r.send.frames / r.send.seconds / 1000).toFixed(0)} | ${(r.send.userUs + r.send.sysUs).toFixed(2)} | ${(r.recv.userUs + r.recv.sysUs).toFixed(2)} | ${r.recv.frames} of ${r.send.frames} |`);
        process.stdout.write(`  MTU ${mtu} ${what} ${len} B, ${batch} per call: sender ${(r.send.userUs + r.send.sysUs).toFixed(2)} µs/frame, receiver ${(r.recv.userUs + r.recv.sysUs).toFixed(2)} µs/frame\n`);
      }
    }
  } finally {
    for (const ns of [NS_SEND, NS_RECV]) await deleteNamespace(ns);
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(
    [
      '',
      `bench:aoe-floor: ${frames} frames per case (a third for jumbo answers) between two packet sockets on a veth pair; CPU per frame of each side (user + system)`,
      '',
      '| MTU | frame | bytes | frames per sendmmsg | sent, thousand/s | sender µs/frame | receiver µs/frame | received |',
      '|---|---|---|---|---|---|---|---|',
      ...rows,
      '',
      'A target pays at least: receiving the request + sending the answer (+ reading the sectors).',
      '',
    ].join('\n'),
  );
}

await main();
