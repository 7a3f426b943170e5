/**
 * Live fuzzing of the iSCSI target over TCP: mutated PDUs from the captured real sessions
 * (src/wire/iscsi/testdata, iscsi-captures.ts) sent by several concurrent connections to a
 * target running in a child process (iscsi-fuzz-target.ts), while a control session on
 * another target of the same server keeps reading and checking 4 KiB blocks. Used by
 * `npm run fuzz:iscsi` (1M inputs, scripts/fuzz-iscsi.mjs) and, smaller, by `make test`
 * (test/fuzz/iscsi-live.fuzz.test.ts).
 *
 * Each fuzz connection either logs in cleanly and then sends bursts of mutated full-feature
 * PDUs (given the session's CmdSN, ExpStatSN and fresh ITTs before mutation, so mutations
 * get past the CmdSN window into the handlers), or skips login and sends mutated login
 * PDUs. In four bursts out of five the mutated PDUs are reframed (lengths made consistent
 * again) so that the whole burst stays in sync and reaches the handlers; the others fuzz the
 * framer.
 * A burst goes out in one or a few writes cut at random offsets; the connection then
 * collects answers until 10 ms pass without one. What the target may do with a bad PDU:
 * answer it (Reject, or a normal response when the mutation is still a valid PDU), ignore it
 * (CmdSN outside the window, §4.2.2.1; a data segment still to come), or drop the connection.
 * What it must not do: exit, fail internally (counted by the child's metrics), refuse a
 * clean login, or stall the control session (every control read must finish within
 * `controlTimeoutMs`).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IscsiOpcode } from '../../src/wire/iscsi/iscsi-constants.js';
import { captureFiles, capturedPdus } from './iscsi-captures.js';
import { IscsiTestClient } from './iscsi-client.js';
import { mutate, prng } from './mutate.js';
import { BLOCK, CONTROL_TARGET, controlPattern, FUZZ_TARGET, VOLUME_BYTES } from './iscsi-fuzz-target.js';

export interface LiveFuzzOptions {
  /** Mutated PDUs to send in all. */
  readonly inputs: number;
  readonly seed?: number;
  /** Concurrent fuzz connections. */
  readonly workers?: number;
  /** A control read slower than this is a hang. */
  readonly controlTimeoutMs?: number;
  /** Called about every `progressMs` with the counts so far. */
  readonly onProgress?: (r: LiveFuzzResult) => void;
  readonly progressMs?: number;
}

export interface LiveFuzzResult {
  inputs: number;
  connections: number;
  /** Connections that logged in before fuzzing (the rest fuzzed the login phase). */
  loggedIn: number;
  /** Clean logins the target refused or did not answer: must stay 0. */
  loginFailures: number;
  rejects: number;
  /** Target PDUs other than Reject (responses to PDUs that stayed valid, R2Ts, login responses...). */
  otherAnswers: number;
  /** Connections the target closed. */
  droppedByTarget: number;
  controlReads: number;
  controlMaxMs: number;
  /** Control reads that failed, timed out or returned wrong bytes: must stay empty. */
  controlErrors: string[];
  /** A clean session on the fuzzed target logged in and read after the campaign. */
  finalSessionOk: boolean;
  /** The target's own counts, read when it stops. */
  target?: { internalErrors: number; rejects: number; dropped: number; logins: number; commands: number; rssMiB: number; reasons: Record<string, number> };
  /** Non-null when the target process ended on its own (a crash). */
  targetExit: string | null;
  /** Lines the target logged at level error (internal failures). */
  targetErrors: string[];
  seconds: number;
}

const QUIET_MS = 10;

/** Runs the whole campaign: starts the target, fuzzes, stops it, returns the counts. */
export async function runLiveFuzz(o: LiveFuzzOptions): Promise<LiveFuzzResult> {
  const started = performance.now();
  const rand = prng(o.seed ?? 0x15c5);
  const all = captureFiles().flatMap((f) => capturedPdus(f));
  const clientPdus = all.filter((p) => p.fromClient).map((p) => p.bytes);
  const opcodeOf = (b: Buffer) => b[0]! & 0x3f;
  const fullFeature = clientPdus.filter((b) => opcodeOf(b) !== IscsiOpcode.loginRequest);
  const logins = clientPdus.filter((b) => opcodeOf(b) === IscsiOpcode.loginRequest);
  const r: LiveFuzzResult = { inputs: 0, connections: 0, loggedIn: 0, loginFailures: 0, rejects: 0, otherAnswers: 0, droppedByTarget: 0, controlReads: 0, controlMaxMs: 0, controlErrors: [], finalSessionOk: false, targetExit: null, targetErrors: [], seconds: 0 };

  const dir = mkdtempSync(join(tmpdir(), 'di-live-fuzz-'));
  const script = join(fileURLToPath(import.meta.url), '../iscsi-fuzz-target.js');
  const child = spawn(process.execPath, [script, '0', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let stopping = false;
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n')) if (line.trim()) r.targetErrors.push(line.slice(0, 500));
  });
  const exited = new Promise<void>((resolve) =>
    child.on('exit', (code, signal) => {
      if (!stopping) r.targetExit = `exited with ${code ?? signal}`;
      resolve();
    }),
  );
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`fuzz target did not start: ${out}`)), 15_000);
      const check = () => {
        const m = /listening (\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        } else if (child.exitCode !== null) reject(new Error(`fuzz target exited: ${r.targetErrors.join('\n')}`));
        else setTimeout(check, 20);
      };
      check();
    });

    let done = false;
    const control = controlLoop(port, r, o.controlTimeoutMs ?? 2000, () => done || r.targetExit !== null);
    const progress = o.onProgress ? setInterval(() => o.onProgress!({ ...r, seconds: (performance.now() - started) / 1000 }), o.progressMs ?? 5000) : undefined;
    const worker = async () => {
      while (r.inputs < o.inputs && r.targetExit === null) await fuzzConnection(port, r, o.inputs, rand, fullFeature, logins);
    };
    await Promise.all(Array.from({ length: o.workers ?? 6 }, worker));
    done = true;
    await control;
    r.finalSessionOk = await cleanSession(port);
    clearInterval(progress);

    stopping = r.targetExit === null;
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((res) => setTimeout(res, 5000))]);
    const stats = /stats (\{.*\})/.exec(out);
    if (stats) r.target = JSON.parse(stats[1]!);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
  r.seconds = (performance.now() - started) / 1000;
  return r;
}

/**
 * A mutated PDU made self-consistent on the wire: at least a BHS, TotalAHSLength within
 * what follows, DataSegmentLength equal to the bytes after the AHS (at most 64 KiB), padded
 * to 4 bytes. Its fields stay as mutated.
 */
function reframe(m: Buffer): Buffer {
  const bhs = Buffer.alloc(48);
  m.copy(bhs, 0, 0, 48);
  const rest = m.subarray(48);
  const ahsLength = Math.min(bhs[4]! * 4, rest.length - (rest.length % 4));
  bhs[4] = ahsLength / 4;
  const data = rest.subarray(ahsLength, ahsLength + 65536);
  bhs.writeUIntBE(data.length, 5, 3);
  return Buffer.concat([bhs, rest.subarray(0, ahsLength), data, Buffer.alloc((4 - (data.length % 4)) % 4)]);
}

/** One fuzz connection: optional clean login, then up to 8 bursts of mutated PDUs. */
async function fuzzConnection(port: number, r: LiveFuzzResult, limit: number, rand: () => number, fullFeature: readonly Buffer[], logins: readonly Buffer[]): Promise<void> {
  const int = (n: number) => Math.floor(rand() * n);
  let c: IscsiTestClient;
  try {
    c = await IscsiTestClient.connect(port);
  } catch {
    await new Promise((res) => setTimeout(res, 20)); // the target is gone or the backlog is full; the caller checks targetExit
    return;
  }
  r.connections++;
  try {
    const login = rand() >= 0.15;
    if (login) {
      const keys: Array<[string, string]> = [['MaxRecvDataSegmentLength', '65536'], ['InitialR2T', rand() < 0.5 ? 'No' : 'Yes'], ['ImmediateData', 'Yes'], ['MaxBurstLength', '262144'], ['FirstBurstLength', '65536']];
      const answer = await c.login({ target: FUZZ_TARGET, keys }).catch(() => null);
      if (!answer || answer.statusClass !== 0) {
        r.loginFailures++;
        return;
      }
      r.loggedIn++;
    }
    const seeds = login ? fullFeature : logins;
    const bursts = 1 + int(8);
    for (let b = 0; b < bursts && !c.closed && r.inputs < limit; b++) {
      const n = Math.min(1 + int(32), limit - r.inputs);
      const pdus: Buffer[] = [];
      const framed = rand() < 0.8;
      for (let i = 0; i < n; i++) {
        const seed = Buffer.from(seeds[int(seeds.length)]!);
        if (login && seed.length >= 48) {
          const op = seed[0]! & 0x3f;
          if (rand() < 0.7) seed.writeUInt32BE(c.newItt(), 16);
          if (op !== IscsiOpcode.dataOut) {
            seed.writeUInt32BE(c.cmdSN, 24);
            if ((seed[0]! & 0x40) === 0) c.cmdSN = (c.cmdSN + 1) >>> 0;
          }
          seed.writeUInt32BE(c.expStatSN, 28);
        }
        let m: Buffer = seed;
        if (rand() >= 0.15) for (let k = 1 + int(3); k > 0; k--) m = mutate(m, rand, seeds);
        // Mostly keep the stream framed, so the rest of the burst reaches the handlers too;
        // some bursts leave the lengths broken, to fuzz the framer.
        pdus.push(framed ? reframe(m) : m);
      }
      r.inputs += n;
      const bytes = Buffer.concat(pdus);
      // One write, or the stream cut at random points (the target's framer must not care).
      let off = 0;
      for (let cuts = int(4); cuts > 0 && off < bytes.length; cuts--) {
        const end = off + int(bytes.length - off + 1);
        c.socket.write(bytes.subarray(off, end));
        off = end;
      }
      if (off < bytes.length) c.socket.write(bytes.subarray(off));
      for (;;) {
        try {
          const p = await c.next(QUIET_MS);
          if (p.opcode === IscsiOpcode.reject) r.rejects++;
          else r.otherAnswers++;
          if ('expCmdSN' in p && p.opcode !== IscsiOpcode.loginResponse) c.cmdSN = p.expCmdSN; // resynchronise after mutated CmdSNs
        } catch {
          break; // quiet, or closed
        }
      }
    }
    if (c.closed) r.droppedByTarget++;
  } finally {
    c.close();
  }
}

/** Logs in to the fuzzed target and reads 4 KiB (once more after a unit attention left by a fuzzed reset). */
async function cleanSession(port: number): Promise<boolean> {
  const c = await IscsiTestClient.connect(port).catch(() => null);
  if (!c) return false;
  try {
    if ((await c.login({ target: FUZZ_TARGET })).statusClass !== 0) return false;
    const cdb = Buffer.from([0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0]);
    let res = await c.scsi(cdb, { read: 8 * BLOCK });
    if (res.status !== 0) res = await c.scsi(cdb, { read: 8 * BLOCK });
    return res.status === 0 && res.data.length === 8 * BLOCK;
  } catch {
    return false;
  } finally {
    c.close();
  }
}

/** The control session: READ(10) of 8 random blocks of the read-only control volume, checked, until `stop()`. */
async function controlLoop(port: number, r: LiveFuzzResult, timeoutMs: number, stop: () => boolean): Promise<void> {
  const rand = prng(99);
  let c: IscsiTestClient | null = null;
  const fail = (what: string) => {
    if (r.controlErrors.length < 20) r.controlErrors.push(what);
  };
  try {
    c = await IscsiTestClient.connect(port);
    const answer = await c.login({ target: CONTROL_TARGET, keys: [['MaxRecvDataSegmentLength', '65536']] });
    if (answer.statusClass !== 0) return fail(`control login refused: ${answer.statusClass}/${answer.statusDetail}`);
    const blocks = VOLUME_BYTES / BLOCK - 8;
    while (!stop()) {
      const lba = Math.floor(rand() * blocks);
      const cdb = Buffer.from([0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0]);
      cdb.writeUInt32BE(lba, 2);
      const t0 = performance.now();
      const res = await Promise.race([c.scsi(cdb, { read: 8 * BLOCK }), new Promise<null>((res) => setTimeout(() => res(null), timeoutMs).unref())]);
      const ms = performance.now() - t0;
      r.controlMaxMs = Math.max(r.controlMaxMs, ms);
      if (!res) return fail(`control READ at LBA ${lba} took over ${timeoutMs} ms`);
      if (res.status !== 0) {
        fail(`control READ at LBA ${lba}: status ${res.status}, sense ${res.sense.toString('hex')}`);
        continue;
      }
      for (let i = 0; i < 8; i++) {
        if (!res.data.subarray(i * BLOCK, (i + 1) * BLOCK).equals(controlPattern(lba + i))) {
          fail(`control READ at LBA ${lba}: block ${i} has the wrong bytes`);
          break;
        }
      }
      r.controlReads++;
      await new Promise((res) => setTimeout(res, 2)); // a steady trickle, not a competing load
    }
  } catch (err) {
    fail(`control session failed: ${(err as Error).message}`);
  } finally {
    c?.close();
  }
}
