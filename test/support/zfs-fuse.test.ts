/**
 * The daemon supervision of test/support/zfs-fuse.ts (start, restart of a hung daemon, the
 * remembered failure) against fake `zfs-fuse` and `zpool` programs in a temporary directory:
 * a real daemon process (it daemonizes, writes its pid file, answers on a unix socket, and
 * hangs on request) and a real client that waits for its answer. The machine's shared zfs-fuse
 * is never touched: restarting it to test this would break every pool of every other run.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { processAlive } from '../../src/store/process-alive.js';
import { ZfsFuseSupervisor, type ZfsFuseSetup } from './zfs-fuse.js';

const FAKE_DAEMON = `#!/usr/bin/env node
// Fake zfs-fuse: "-p PIDFILE"; daemonizes; answers "zpool list" on ./sock; hangs when ./hang
// exists (taking it) or ./hang-always exists. Records every pid in ./pids.
const net = require('net'), fs = require('fs'), path = require('path'), { spawn } = require('child_process');
const dir = __dirname, sock = path.join(dir, 'sock'), args = process.argv.slice(2);
if (args[0] !== '--foreground') {
  fs.appendFileSync(path.join(dir, 'starts'), 'start\\n');
  spawn(process.execPath, [__filename, '--foreground', ...args], { detached: true, stdio: 'ignore' }).unref();
  process.exit(0);
}
const pidFile = args[args.indexOf('-p') + 1];
fs.appendFileSync(path.join(dir, 'pids'), process.pid + '\\n');
let hung = false;
const serve = () => net.createServer((conn) => {
  if (fs.existsSync(path.join(dir, 'hang-always'))) hung = true;
  try { fs.renameSync(path.join(dir, 'hang'), path.join(dir, 'hang.' + process.pid)); hung = true; } catch {}
  if (!hung) conn.end('pool-a\\n');
}).listen(sock, () => fs.writeFileSync(pidFile, String(process.pid)));
const other = net.connect(sock);
other.on('connect', () => process.exit(1));
other.on('error', () => { try { fs.unlinkSync(sock); } catch {} serve(); });
`;

const FAKE_ZPOOL = `#!/usr/bin/env node
const c = require('net').connect(require('path').join(__dirname, 'sock'));
let out = '';
c.on('data', (d) => { out += d; });
c.on('end', () => { process.stdout.write(out); process.exit(0); });
c.on('error', (e) => { process.stderr.write('connect: ' + e.message + '\\n'); process.exit(1); });
`;

const ANSWER_MS = 1_500;
const dirs: string[] = [];
const strays: number[] = [];

/** A fresh directory with the fakes, and the setup that points at it. */
async function fakes(): Promise<{ dir: string; setup: ZfsFuseSetup }> {
  const dir = await mkdtemp(join(tmpdir(), 'hz5-fake-zfs-fuse-'));
  dirs.push(dir);
  await writeFile(join(dir, 'zfs-fuse'), FAKE_DAEMON, { mode: 0o755 });
  await writeFile(join(dir, 'zpool'), FAKE_ZPOOL, { mode: 0o755 });
  return { dir, setup: { zpool: join(dir, 'zpool'), daemon: join(dir, 'zfs-fuse'), pidFile: join(dir, 'zfs-fuse.pid'), restartLock: join(dir, 'restart.lock'), answerTimeoutMs: ANSWER_MS, startTimeoutMs: 5_000 } };
}

const lines = async (path: string): Promise<string[]> => (await readFile(path, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
/** True while `pid` runs (a zombie left for a parent that does not reap counts as gone). */
const running = async (pid: number): Promise<boolean> => processAlive(pid) && !/\) Z /.test(await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ') Z '));
const pidOf = async (setup: ZfsFuseSetup): Promise<number> => Number((await readFile(setup.pidFile, 'utf8')).trim());

after(async () => {
  // Only the fake daemons (each recorded its pid) and the sleeps these tests started.
  for (const dir of dirs) {
    for (const pid of (await lines(join(dir, 'pids'))).map(Number)) if (processAlive(pid)) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
  for (const pid of strays) if (processAlive(pid)) process.kill(pid, 'SIGKILL');
});

test('a daemon that is down is started; one that answers is left alone', async () => {
  const { dir, setup } = await fakes();
  const s = new ZfsFuseSupervisor(setup);
  assert.deepEqual(await s.probe(), { kind: 'down', why: `\`${setup.zpool} list -H -o name\` failed (exit 1): connect: connect ENOENT ${join(dir, 'sock')}` });
  assert.deepEqual(await s.ensure(), { started: true, pidFile: setup.pidFile });
  assert.deepEqual(await s.ensure(), { started: false, pidFile: setup.pidFile });
  assert.equal((await lines(join(dir, 'starts'))).length, 1);
});

test('a hung daemon named by the pid file is stopped and started again, once; the new one answers', async () => {
  const { dir, setup } = await fakes();
  await new ZfsFuseSupervisor(setup).ensure(); // started by "another test file"
  const hungPid = await pidOf(setup);
  await writeFile(join(dir, 'hang'), '');
  const s = new ZfsFuseSupervisor(setup);
  const t0 = Date.now();
  assert.deepEqual(await s.ensure(), { started: true, pidFile: setup.pidFile });
  const ms = Date.now() - t0;
  assert.ok(ms < 2 * ANSWER_MS + 8_000, `restart took ${ms} ms`);
  assert.deepEqual(await readdir(dir).then((f) => f.filter((x) => x.startsWith('hang'))), [`hang.${hungPid}`], 'the first daemon took the hang');
  assert.equal(await running(hungPid), false, 'the hung daemon is gone');
  assert.notEqual(await pidOf(setup), hungPid);
  assert.equal((await lines(join(dir, 'starts'))).length, 2);
  assert.deepEqual(await s.ensure(), { started: false, pidFile: setup.pidFile });
});

test('a daemon that still hangs after its one restart fails this and every later check at once, naming the command and the timeout', async () => {
  const { dir, setup } = await fakes();
  await new ZfsFuseSupervisor(setup).ensure();
  await writeFile(join(dir, 'hang-always'), '');
  const s = new ZfsFuseSupervisor(setup);
  const first = await s.ensure().then(() => undefined, (e: unknown) => e as Error);
  assert.ok(first instanceof Error);
  assert.ok(first.message.includes(`\`${setup.zpool} list -H -o name\` did not finish within ${ANSWER_MS} ms`), first.message);
  assert.match(first.message, /after restarting it once/);
  assert.equal((await lines(join(dir, 'starts'))).length, 2, 'restarted exactly once');
  const t0 = Date.now();
  await assert.rejects(s.ensure(), (e: unknown) => (e as Error).message === first.message);
  assert.ok(Date.now() - t0 < 100, 'the remembered failure is immediate');
  assert.equal((await lines(join(dir, 'starts'))).length, 2, 'and starts nothing');
});

test('a hang is never answered by killing a process that is not the daemon', async () => {
  const { dir, setup } = await fakes();
  await new ZfsFuseSupervisor(setup).ensure();
  const daemonPid = await pidOf(setup);
  await writeFile(join(dir, 'hang-always'), '');
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  strays.push(sleeper.pid!);
  await writeFile(setup.pidFile, String(sleeper.pid));
  const err = await new ZfsFuseSupervisor(setup).ensure().then(() => undefined, (e: unknown) => e as Error);
  assert.ok(err instanceof Error);
  assert.match(err.message, new RegExp(`names pid ${sleeper.pid} \\(sleep 60\\), not a zfs-fuse that test support may restart`));
  assert.ok(err.message.includes(`did not finish within ${ANSWER_MS} ms`), err.message);
  assert.equal(await running(sleeper.pid!), true);
  assert.equal(await running(daemonPid), true);
  assert.equal((await lines(join(dir, 'starts'))).length, 1);
});
