/**
 * Real iPXE (the e1000 option ROM from Debian's ipxe-qemu, in QEMU/TCG) runs the scripts our
 * control layer writes, fetched from `diskless serve` over HTTP: an unknown machine gets the
 * discovery script, is recorded in discovered.json and retries; the operator adopts it (config
 * rewritten, SIGHUP) and the next retry runs its own script. That script also proves that the
 * `set <name>:hex` form ipxeSet uses for awkward values stores exactly the original bytes.
 * Everything runs inside a private namespace (QEMU user networking reaches our server on the
 * namespace's loopback as 10.0.2.2); needs root, ~10–30 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNamespace, deleteNamespace } from '../../src/lab/netns.js';
import { ipxeSet } from '../../src/control/ipxe-script.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const NS = 'dh-ipxe';
const MAC = '52:54:00:d4:00:01';
const PORT = 8080;
const AWKWARD = 'we ird ${x} #1 || ok';

function waitFor(output: () => string, pattern: RegExp, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolveWait, reject) => {
    const tick = () => {
      if (pattern.test(output())) resolveWait();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}; console:\n${output().slice(-2000)}`));
      else setTimeout(tick, 100);
    };
    tick();
  });
}

function stop(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(timer);
      r();
    });
    child.kill(signal);
  });
}

test('real iPXE: discovery script, retry, adoption by SIGHUP, and :hex settings', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dh-ipxe-'));
  const tftp = join(dir, 'tftp');
  mkdirSync(tftp);
  const dataDir = join(dir, 'data');
  // slirp's DHCP hands out start.ipxe; it chains to our per-MAC script URL.
  writeFileSync(join(tftp, 'start.ipxe'), `#!ipxe\nchain http://10.0.2.2:${PORT}/boot/\${net0/mac:hexhyp}.ipxe\n`);
  const base = `log: {level: info}\nserver: {address: 10.0.2.2, dataDir: ${dataDir}}\ndhcp: {mode: off}\nra: {enabled: false}\ntftp: {enabled: false}\niscsi: {enabled: false}\nhttp: {address: 0.0.0.0, port: ${PORT}}\n`;
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, base + 'defaults: {unknownNode: discovery, discoveryRetrySeconds: 2}\n');

  let server: ChildProcess | undefined;
  let qemu: ChildProcess | undefined;
  let serverLog = '';
  let consoleText = '';
  await deleteNamespace(NS);
  await createNamespace(NS);
  t.after(async () => {
    await stop(qemu, 'SIGKILL');
    await stop(server);
    await deleteNamespace(NS);
    rmSync(dir, { recursive: true, force: true });
  });

  server = spawn('ip', ['netns', 'exec', NS, process.execPath, join(root, 'dist/src/cli/main.js'), 'serve', '--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  server.stderr!.on('data', (d) => (serverLog += d));
  await waitFor(() => serverLog, /HTTP boot server listening/, 10_000, 'the server');

  qemu = spawn(
    'ip',
    ['netns', 'exec', NS, 'qemu-system-x86_64', '-accel', 'tcg', '-m', '128', '-nographic', '-no-reboot', '-boot', 'n',
      '-netdev', `user,id=n0,tftp=${tftp},bootfile=start.ipxe`, '-device', `e1000,netdev=n0,mac=${MAC}`],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  qemu.stdout!.on('data', (d) => (consoleText += d));
  qemu.stderr!.on('data', (d) => (consoleText += d));

  await waitFor(() => consoleText, /asking the boot server again in 2 s/, 60_000, 'the discovery script');
  await waitFor(() => readFileSafe(join(dataDir, 'discovered.json')), /"requests": 2/, 20_000, 'a second request (the retry)');
  const discovered = JSON.parse(readFileSync(join(dataDir, 'discovered.json'), 'utf8')).machines;
  assert.equal(discovered[0].mac, MAC);
  assert.equal(discovered[0].ip, '127.0.0.1'); // slirp connects from the namespace's loopback

  // Adopt: the node's own script, which stores an awkward value with ipxeSet and prints it back.
  const body = [ipxeSet('username', AWKWARD), 'show username', 'echo DH-ADOPTED-OK', 'sleep 30'].join('\\n');
  writeFileSync(configFile, base + `defaults: {unknownNode: discovery, discoveryRetrySeconds: 2}\nnodes: [{name: adopted, mac: '${MAC}', boot: script, script: "${body}"}]\n`);
  server.kill('SIGHUP');
  await waitFor(() => consoleText, /DH-ADOPTED-OK/, 30_000, 'the adopted node script');
  // `show` prints the stored value as it is; `echo ${username}` would expand the ${x} inside it again.
  const shown = /username\S* = (.*)\r?\n/.exec(consoleText)?.[1];
  assert.equal(shown, AWKWARD, 'the :hex setting holds the original bytes');
  assert.match(serverLog, /inventory reloaded/);
});

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
