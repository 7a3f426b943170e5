import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseChap, parseExportOptions, parseIqn, parseListen, parseLun } from './export-command.js';
import { isDisklessError } from '../errors/index.js';
import { runTool } from '../../test/support/run-tool.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');

function usageError(fn: () => unknown, option: string, mention: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isDisklessError(err, 'USAGE'), String(err));
    assert.match(err.message, new RegExp(`^option ${option}: value `));
    assert.match(err.message, /allowed: /);
    assert.match(err.message, mention);
    return true;
  });
}

test('parseIqn: iqn/eui/naa names pass, others name the option and what is allowed', () => {
  assert.equal(parseIqn('iqn.2026-11.io.diskless:disk-1'), 'iqn.2026-11.io.diskless:disk-1');
  assert.equal(parseIqn('iqn.2001-04.com.example'), 'iqn.2001-04.com.example');
  assert.equal(parseIqn('eui.02004567A425678D'), 'eui.02004567A425678D');
  assert.equal(parseIqn('naa.52004567BA64678D'), 'naa.52004567BA64678D');
  usageError(() => parseIqn('disk1'), '--iqn', /"disk1"/);
  usageError(() => parseIqn('iqn.2026-13.io.x'), '--iqn', /iqn\.YYYY-MM/);
  usageError(() => parseIqn('iqn.2026-11.IO.X'), '--iqn', /lower case/);
  usageError(() => parseIqn('eui.0200'), '--iqn', /eui/);
  usageError(() => parseIqn(`iqn.2026-11.io.x:${'a'.repeat(220)}`), '--iqn', /223 bytes/);
});

test('parseListen: IPv4 and bracketed IPv6 with a port; bad addresses and ports refused', () => {
  assert.deepEqual(parseListen('127.0.0.1:14000'), { address: '127.0.0.1', port: 14000 });
  assert.deepEqual(parseListen('[::1]:3260'), { address: '::1', port: 3260 });
  assert.deepEqual(parseListen('0.0.0.0:0'), { address: '0.0.0.0', port: 0 });
  usageError(() => parseListen('127.0.0.1'), '--listen', /IPv4:PORT/);
  usageError(() => parseListen('127.0.0.1:65536'), '--listen', /above 65535/);
  usageError(() => parseListen('300.0.0.1:1'), '--listen', /not an IPv4 address/);
  usageError(() => parseListen('::1:3260'), '--listen', /\[IPv6\]/);
  usageError(() => parseListen('[127.0.0.1]:3260'), '--listen', /not an IPv6 address/);
});

test('parseLun: 0..255', () => {
  assert.equal(parseLun('0'), 0);
  assert.equal(parseLun('255'), 255);
  usageError(() => parseLun('256'), '--lun', /0-255/);
  usageError(() => parseLun('-1'), '--lun', /0-255/);
  usageError(() => parseLun('1.5'), '--lun', /0-255/);
});

test('parseChap: USER:SECRET with a 12..255-byte secret; the secret is never echoed', () => {
  assert.deepEqual(parseChap('--chap', 'node1:secretsecret1'), { username: 'node1', secret: 'secretsecret1' });
  assert.deepEqual(parseChap('--chap', 'u:a:b:c:dddddddd'), { username: 'u', secret: 'a:b:c:dddddddd' });
  usageError(() => parseChap('--chap', 'node1:short'), '--chap', /shorter than 12/);
  usageError(() => parseChap('--chap', `node1:${'x'.repeat(256)}`), '--chap', /longer than 255/);
  usageError(() => parseChap('--mutual', ':secretsecret1'), '--mutual', /no USER/);
  assert.throws(() => parseChap('--chap', 'node1:tiny'), (e: Error) => !e.message.includes('tiny'));
});

test('parseExportOptions: required options, identical one-way and mutual secrets, --mutual without --chap', () => {
  const base = { lun: '0', readOnly: false, blockSize: '512', logLevel: 'warn' };
  const ok = parseExportOptions('f.img', { ...base, iqn: 'iqn.2026-11.io.x:a', listen: '127.0.0.1:1', chap: 'i:secretsecret1', mutual: 't:othersecret22' });
  assert.equal(ok.mutualChap?.secret, 'othersecret22');
  usageError(() => parseExportOptions('f.img', { ...base, listen: '127.0.0.1:1' }), '--iqn', /required/);
  usageError(() => parseExportOptions('f.img', { ...base, iqn: 'iqn.2026-11.io.x:a' }), '--listen', /required/);
  usageError(() => parseExportOptions('f.img', { ...base, iqn: 'iqn.2026-11.io.x:a', listen: '127.0.0.1:1', chap: 'i:secretsecret1', mutual: 't:secretsecret1' }), '--mutual', /same secret/);
  usageError(() => parseExportOptions('f.img', { ...base, iqn: 'iqn.2026-11.io.x:a', listen: '127.0.0.1:1', mutual: 't:secretsecret1' }), '--mutual', /without --chap/);
  usageError(() => parseExportOptions('f.img', { ...base, blockSize: '1024', iqn: 'iqn.2026-11.io.x:a', listen: '127.0.0.1:1' }), '--block-size', /512 or 4096/);
});

function runCli(args: string[], onLine?: (line: string, child: ReturnType<typeof spawn>) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
      for (const line of String(d).split('\n')) if (line) onLine?.(line, child);
    });
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

test('diskless export iscsi: serves until SIGTERM, then stops cleanly with exit 0; bad input exits 2', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dl-export-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'disk.img');
  writeFileSync(file, Buffer.alloc(1024 * 1024));
  const r = await runCli(['export', 'iscsi', file, '--iqn', 'iqn.2026-11.io.diskless:cli', '--listen', '127.0.0.1:0', '--lun', '7'], (line, child) => {
    if (line.startsWith('listening on 127.0.0.1:')) child.kill('SIGTERM');
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /LUN 7/);
  assert.match(r.stdout, /listening on 127\.0\.0\.1:\d+\nstopping/);
  const bad = await runCli(['export', 'iscsi', file, '--iqn', 'iqn.2026-11.io.diskless:cli', '--listen', '127.0.0.1:0', '--lun', '300']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^error USAGE: option --lun: value "300" is not allowed; allowed: an integer 0-255\n$/);
  const missing = await runCli(['export', 'iscsi', join(dir, 'nope.img'), '--iqn', 'iqn.2026-11.io.diskless:cli', '--listen', '127.0.0.1:0']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /argument FILE: .*nope\.img.*ENOENT/);
});

/** Starts `diskless export iscsi ARGS` and resolves once it listens, with its port and a stop function returning the exit code. */
async function startExport(args: string[]): Promise<{ port: number; banner: string; stop: () => Promise<number | null> }> {
  const child = spawn(process.execPath, [cli, 'export', 'iscsi', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const port = await new Promise<number>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`export did not start: ${out} ${err}`)), 15_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        done(Number(m[1]));
      }
    });
    child.once('exit', (code) => fail(new Error(`export exited with ${code}: ${err}`)));
  });
  const stop = async () => {
    if (child.exitCode !== null) return child.exitCode;
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    child.kill('SIGTERM');
    return exited;
  };
  return { port, banner: out, stop };
}

test('diskless export iscsi --pool: a clone served read-write, its golden snapshot read-only; libiscsi and qemu-io see the volume; the pool is locked meanwhile', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dl-export-pool-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pool = join(dir, 'pool');
  const image = join(dir, 'golden.raw');
  writeFileSync(image, Buffer.alloc(8 * 1024 * 1024, 0x5a));
  for (const args of [['import', 'golden', image], ['snapshot', 'golden@v1'], ['clone', 'golden@v1', 'pc1'], ['create', 'big', '--size', '64M', '-b', '4096']]) {
    const r = await runCli(['volume', ...args, '--pool', pool]);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
  const iqn = 'iqn.2026-11.io.diskless:pool';
  const url = (port: number) => `iscsi://127.0.0.1:${port}/${iqn}/0`;

  const rw = await startExport(['pc1', '--pool', pool, '--iqn', iqn, '--listen', '127.0.0.1:0']);
  try {
    assert.match(rw.banner, new RegExp(`^exporting volume pc1 of embedded pool ${pool} \\(8388608 bytes, 512-byte blocks, thin provisioned\\) as ${iqn} LUN 0\n`));
    const cap = await runTool('iscsi-readcapacity16', [url(rw.port)]);
    assert.equal(cap.code, 0, cap.out);
    assert.match(cap.out, /LOGICAL BLOCK LENGTH IN BYTES:512\n/);
    assert.match(cap.out, /RETURNED LOGICAL BLOCK ADDRESS:16383\n/);
    const io = await runTool('qemu-io', ['-f', 'raw', '-c', 'read -P 0x5a 0 1M', '-c', 'write -P 0x77 0 64k', '-c', 'flush', '-c', 'read -P 0x77 0 64k', '-c', 'read -P 0x5a 64k 64k', url(rw.port)]);
    assert.equal(io.code, 0, io.out);
    assert.doesNotMatch(io.out, /Pattern verification failed|error/i);
    const busy = await runCli(['volume', 'list', '--pool', pool]);
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, /^error STORE_BUSY: /);
  } finally {
    assert.equal(await rw.stop(), 0);
  }

  const ro = await startExport(['golden@v1', '--pool', pool, '--iqn', iqn, '--listen', '127.0.0.1:0']);
  try {
    assert.match(ro.banner, /^exporting volume golden@v1 of embedded pool .* 512-byte blocks, read-only, thin provisioned\) as /);
    const io = await runTool('qemu-io', ['-r', '-f', 'raw', '-c', 'read -P 0x5a 0 64k', url(ro.port)]);
    assert.equal(io.code, 0, `the golden snapshot is unchanged by the clone's writes: ${io.out}`);
    const write = await runTool('qemu-io', ['-f', 'raw', '-c', 'write -P 0x11 0 4k', url(ro.port)]);
    assert.notEqual(write.code, 0, 'a snapshot cannot be written');
  } finally {
    assert.equal(await ro.stop(), 0);
  }

  const big = await startExport(['big', '--pool', pool, '--iqn', iqn, '--listen', '127.0.0.1:0']);
  try {
    const cap = await runTool('iscsi-readcapacity16', [url(big.port)]);
    assert.match(cap.out, /LOGICAL BLOCK LENGTH IN BYTES:4096\n/, 'a volume is served with its own block size');
  } finally {
    assert.equal(await big.stop(), 0);
  }

  const listed = await runCli(['volume', 'list', '-H', '-p', 'pc1', '--pool', pool]);
  assert.ok(Number(listed.stdout.toString().split('\t')[3]) >= 64 * 1024, `pc1 has written bytes: ${listed.stdout}`);

  for (const [args, message] of [
    [['missing', '--pool', pool], /^error STORE_NOT_FOUND: /],
    [['pc1', '--pool', join(dir, 'typo')], /^error USAGE: option --pool: .*no such directory/],
    [['pc1', '--pool', pool, '--block-size', '4096'], /^error USAGE: option --block-size: .*a volume keeps the block size/],
    [[image, '--mirror', join(dir, 'm')], /^error USAGE: option --mirror: .*together with --pool/],
    [['pc1', '--zfs', 'tank/x', '--pool', pool], /^error USAGE: option --pool: .*either --zfs/],
  ] as Array<[string[], RegExp]>) {
    const r = await runCli(['export', 'iscsi', ...args, '--iqn', iqn, '--listen', '127.0.0.1:0']);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr.toString(), message, args.join(' '));
  }
});
