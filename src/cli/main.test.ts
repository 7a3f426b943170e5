import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { validateConfig } from '../config/load-config.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], onSpawn?: (child: ReturnType<typeof spawn>) => void): Promise<Run> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
    onSpawn?.(child);
  });
}

function files(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'dh-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  return Object.assign(write, { dir });
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

test('config check: ok and exit 0 on a good file', async (t) => {
  const file = files(t)('good.yaml', 'volumes: [{name: v, size: 64MiB}]\nnodes: [{name: pc1, mac: 52:54:00:12:34:56, volume: v}]\n');
  const r = await run(['config', 'check', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'ok\n');
});

test('config check: every kind of bad input is "error CODE: ..." on stderr and exit 2', async (t) => {
  const f = files(t);
  const cases: Array<[string, string]> = [
    [f('enum.yaml', 'dhcp: {mode: proxi}\n'), 'CONFIG_INVALID'],
    [f('syntax.yaml', 'dhcp: [unclosed\n'), 'CONFIG_SYNTAX'],
    [join(tmpdir(), 'dh-cli-does-not-exist.yaml'), 'CONFIG_NOT_FOUND'],
    // Schema-valid, but no iPXE script can be written for the node: caught by check, not at boot time.
    [f('iqn.yaml', 'iscsi: {iqnPrefix: "not an iqn"}\nvolumes: [{name: v, size: 1M}]\nnodes: [{name: a, mac: 52:54:00:00:00:01, volume: v}]\n'), 'CONFIG_INVALID'],
  ];
  for (const [file, code] of cases) {
    const r = await run(['config', 'check', file]);
    assert.equal(r.code, 2, `${file}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`^error ${code}: `), file);
  }
});

test('usage errors exit 2, --help exits 0', async () => {
  assert.equal((await run(['config', 'chek'])).code, 2);
  assert.equal((await run(['config', 'check'])).code, 2);
  assert.equal((await run(['no-such-command'])).code, 2);
  assert.equal((await run(['serve', '--no-such-option'])).code, 2);
  const help = await run(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /config/);
  assert.match(help.stdout, /serve/);
});

test('config defaults prints the complete default configuration as YAML', async () => {
  const r = await run(['config', 'defaults']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(parse(r.stdout), JSON.parse(JSON.stringify(validateConfig({}))));
});

test('serve runs until SIGTERM, answers HTTP meanwhile, and exits 0', async (t) => {
  const f = files(t);
  const port = await freePort();
  const dataDir = join(f.dir, 'data');
  const config = f('serve.yaml', `log: {level: info}\nserver: {address: 127.0.0.1, dataDir: ${dataDir}}\ndhcp: {mode: off}\nra: {enabled: false}\ntftp: {enabled: false}\niscsi: {enabled: false}\nhttp: {address: 127.0.0.1, port: ${port}}\ndefaults: {unknownNode: discovery}\n`);
  let healthy = false;
  let script = '';
  const r = await run(['serve', '--config', config], (child) => {
    void (async () => {
      for (let i = 0; i < 100 && !healthy; i++) {
        await new Promise((res) => setTimeout(res, 100));
        healthy = await fetch(`http://127.0.0.1:${port}/healthz`).then((x) => x.ok, () => false);
      }
      script = await (await fetch(`http://127.0.0.1:${port}/boot/52-54-00-00-00-77.ipxe`)).text();
      child.kill('SIGTERM');
    })();
  });
  assert.ok(healthy, r.stderr);
  assert.match(script, /chain --replace --autofree http:\/\/127\.0\.0\.1:\d+\/boot\/52-54-00-00-00-77\.ipxe \|\| goto retry/);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /"msg":"stopping"/);
});

test('serve exits 1 with the error code when a port is taken', async (t) => {
  const f = files(t);
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.after(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const dataDir = join(f.dir, 'data');
  const config = f('busy.yaml', `log: {level: silent}\nserver: {dataDir: ${dataDir}}\ndhcp: {mode: off}\nra: {enabled: false}\ntftp: {enabled: false}\niscsi: {enabled: false}\nhttp: {address: 127.0.0.1, port: ${port}}\n`);
  const r = await run(['serve', '--config', config]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error HTTP_LISTEN_FAILED: /m);
});
