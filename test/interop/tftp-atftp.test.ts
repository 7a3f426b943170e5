/**
 * Interop: Debian's atftp client (and curl tftp://) downloading from our server
 * on loopback, compared byte for byte with the source: blksize 512/1428/1468/8192 ×
 * windowsize 1/4/16/64 on an empty file, an exactly-512-byte file and an odd size, plus a
 * 36 MiB file (73,729 blocks at blksize 512: past the 65535 rollover) lock-step and windowed.
 * Escape attempts through the real clients end in an ERROR and no file. The server uses its
 * default transport (the addon's native socket when built); a second server pinned to the
 * node:dgram fallback runs the blksize 1468 matrix and the rollover too.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { silentLogger } from '../../src/observe/logger.js';
import { Metrics } from '../../src/observe/metrics.js';
import { TftpServer } from '../../src/services/tftp/tftp-server.js';

const execFileP = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'dt-tftp-interop-'));
const root = join(dir, 'root');
const out = join(dir, 'out');
const BIG = 36 * 1024 * 1024 + 123;
const sources: Record<string, Buffer> = {};
const metrics = new Metrics();
let server: TftpServer;
let dgramServer: TftpServer;

before(async () => {
  mkdirSync(root);
  mkdirSync(out);
  sources['empty'] = Buffer.alloc(0);
  sources['exact512'] = randomBytes(512);
  sources['odd'] = randomBytes(200_003);
  sources['big'] = randomBytes(BIG);
  for (const [name, data] of Object.entries(sources)) writeFileSync(join(root, name), data);
  writeFileSync(join(dir, 'secret'), 'outside');
  server = new TftpServer({ root, address: '127.0.0.1', port: 0, maxBlockSize: 8192, maxWindowSize: 64, log: silentLogger(), metrics });
  await server.start();
  dgramServer = new TftpServer({ root, address: '127.0.0.1', port: 0, maxBlockSize: 8192, maxWindowSize: 64, transport: 'dgram', log: silentLogger(), metrics: new Metrics() });
  await dgramServer.start();
});

after(async () => {
  await server.stop();
  await dgramServer.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs atftp --get; resolves with the local file (or undefined) and the client's stderr. */
async function atftpGet(remote: string, options: Record<string, number>, timeoutMs = 60_000, port = server.port): Promise<{ data?: Buffer; ok: boolean; stderr: string }> {
  const local = join(out, `f${Math.random().toString(36).slice(2)}`);
  const args = ['--get', '-r', remote, '-l', local];
  for (const [k, v] of Object.entries(options)) args.push('--option', `${k} ${v}`);
  args.push('127.0.0.1', String(port));
  try {
    const { stderr } = await execFileP('atftp', args, { timeout: timeoutMs });
    return { data: readFileSync(local), ok: true, stderr };
  } catch (err) {
    return { ok: false, stderr: String((err as { stderr?: string }).stderr ?? err) };
  } finally {
    rmSync(local, { force: true });
  }
}

for (const blksize of [512, 1428, 1468, 8192]) {
  test(`atftp blksize ${blksize} × windowsize 1/4/16/64: empty, 512-byte and odd files byte for byte`, async () => {
    for (const windowsize of [1, 4, 16, 64]) {
      for (const name of ['empty', 'exact512', 'odd']) {
        const r = await atftpGet(name, { blksize, windowsize }, 20_000);
        assert.ok(r.ok, `${name} blksize ${blksize} windowsize ${windowsize}: ${r.stderr}`);
        assert.ok(r.data!.equals(sources[name]!), `${name} blksize ${blksize} windowsize ${windowsize}: ${r.data!.length} bytes`);
      }
    }
  });
}

test('dgram fallback: atftp blksize 1468 × windowsize 1/4/16/64 and the rollover at windowsize 16', { timeout: 180_000 }, async () => {
  assert.equal(dgramServer.transport, 'dgram');
  for (const windowsize of [1, 4, 16, 64]) {
    for (const name of ['empty', 'exact512', 'odd']) {
      const r = await atftpGet(name, { blksize: 1468, windowsize }, 20_000, dgramServer.port);
      assert.ok(r.ok && r.data!.equals(sources[name]!), `dgram ${name} windowsize ${windowsize}: ${r.stderr}`);
    }
  }
  const r = await atftpGet('big', { blksize: 512, windowsize: 16 }, 150_000, dgramServer.port);
  assert.ok(r.ok && r.data!.equals(sources['big']!), `dgram rollover: ${r.stderr}`);
});

test('atftp without options (RFC 1350 lock-step, 512-byte blocks)', async () => {
  const r = await atftpGet('odd', {});
  assert.ok(r.data?.equals(sources['odd']!), r.stderr);
});

test(`rollover: a ${BIG}-byte file (${Math.floor(BIG / 512) + 1} blocks of 512) lock-step and at windowsize 16`, { timeout: 180_000 }, async () => {
  for (const windowsize of [1, 16]) {
    const r = await atftpGet('big', { blksize: 512, windowsize }, 150_000);
    assert.ok(r.ok, r.stderr);
    assert.equal(r.data!.length, BIG);
    assert.ok(r.data!.equals(sources['big']!), `windowsize ${windowsize}: content differs`);
  }
});

test('curl tftp:// (blksize and tsize options) byte for byte, including past the rollover', { timeout: 180_000 }, async () => {
  // No empty file: curl 7.88 fails on one with every server (atftpd too: "getpeername() failed").
  for (const [name, extra] of [['odd', ['--tftp-blksize', '1468']], ['exact512', []], ['big', []]] as const) {
    const local = join(out, `curl-${name}`);
    await execFileP('curl', ['-s', '-S', ...extra, '-o', local, `tftp://127.0.0.1:${server.port}/${name}`], { timeout: 150_000 });
    assert.ok(readFileSync(local).equals(sources[name]!), `curl ${name}`);
    rmSync(local);
  }
});

test('escape attempts through atftp and curl end in a server ERROR and no file', async () => {
  const refusedBefore = metrics.total('diskless_tftp_refused_total');
  for (const remote of ['../secret', 'x/../../secret', '/etc/passwd', '..\\secret']) {
    const r = await atftpGet(remote, { blksize: 1468 }, 10_000);
    assert.equal(r.ok, false, remote);
    assert.match(r.stderr, /error received from server/, remote);
  }
  await assert.rejects(execFileP('curl', ['-s', '-o', join(out, 'c'), `tftp://127.0.0.1:${server.port}/%2Fetc%2Fpasswd`], { timeout: 10_000 }));
  await assert.rejects(execFileP('curl', ['-s', '--path-as-is', '-o', join(out, 'c'), `tftp://127.0.0.1:${server.port}/../secret`], { timeout: 10_000 }));
  assert.equal(metrics.total('diskless_tftp_refused_total'), refusedBefore + 6);
  assert.ok(!existsSync(join(out, 'c')) || statSync(join(out, 'c')).size === 0);
});
