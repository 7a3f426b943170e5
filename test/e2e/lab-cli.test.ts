import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Lab } from '../../src/lab/lab.js';
import { namespaceExists } from '../../src/lab/netns.js';
import { CLI_MAIN } from '../../src/lab/serve-stack.js';

const execFileP = promisify(execFile);
const NS = 'dl-t-cli';

/** Runs `diskless ...args`; resolves with status, stdout and stderr (never rejects on exit status). */
async function diskless(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [CLI_MAIN, ...args], { encoding: 'utf8', timeout: 45_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

// The CLI plumbing, independent of which services `serve` runs: a server with every service
// off (so nothing answers the VM), boot times out cleanly, down removes everything.
test('diskless lab up | status | boot | down with a server that answers nothing', { timeout: 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dl-lab-cli-'));
  const lab = new Lab({ namespace: NS });
  t.after(async () => {
    await lab.down();
    await rm(dir, { recursive: true, force: true });
  });
  await lab.down();
  const config = join(dir, 'quiet.yaml');
  await writeFile(
    config,
    [
      'log: { level: warn }',
      `server: { address: 10.77.0.1, dataDir: ${join(dir, 'data')} }`,
      'dhcp: { mode: "off" }',
      'ra: { enabled: false }',
      'tftp: { enabled: false }',
      'http: { enabled: false }',
      'iscsi: { enabled: false }',
      '',
    ].join('\n'),
  );

  const up = await diskless('lab', 'up', '--namespace', NS, '--config', config);
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stdout, new RegExp(`lab ${NS} is up`));
  assert.ok(await namespaceExists(NS));
  // Idempotent: the running server is left alone.
  const again = await diskless('lab', 'up', '--namespace', NS, '--config', config);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /server already running/);

  const status = await diskless('lab', 'status', '--namespace', NS, '--json');
  assert.equal(status.code, 0, status.stderr);
  const s = JSON.parse(status.stdout) as { up: boolean; bridge: { addresses: string[] }; recorded: Array<{ name: string; alive: boolean }> };
  assert.equal(s.up, true);
  assert.ok(s.bridge.addresses.includes('10.77.0.1/24'));
  assert.deepEqual(s.recorded.map((r) => [r.name, r.alive]), [['serve', true]]);

  const bad = await diskless('lab', 'boot', '--namespace', NS, '--mac', 'nope');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^error USAGE: /);

  const boot = await diskless('lab', 'boot', '--namespace', NS, '--timeout', '4');
  assert.equal(boot.code, 1);
  assert.match(boot.stderr, /^error LAB_TIMEOUT: /);
  assert.match(boot.stdout, /^power-on\s+0\.000/m);
  assert.match(boot.stdout, /^firmware\s+\d+\.\d{3}\s+\d+\.\d{3}\s+SeaBIOS/m);
  // The VM is gone and its tap removed.
  const after = await lab.status();
  assert.deepEqual(after.taps, []);
  assert.equal(after.processes.some((p) => p.command.includes('qemu-system')), false);

  const down = await diskless('lab', 'down', '--namespace', NS);
  assert.equal(down.code, 0, down.stderr);
  assert.equal(await namespaceExists(NS), false);
  assert.equal(existsSync(lab.stateDir), false);
  const downAgain = await diskless('lab', 'down', '--namespace', NS);
  assert.equal(downAgain.code, 0);
  assert.match(downAgain.stdout, /was not up/);

  const notUp = await diskless('lab', 'boot', '--namespace', NS);
  assert.equal(notUp.code, 1);
  assert.match(notUp.stderr, /^error LAB_NOT_UP: /);
});
