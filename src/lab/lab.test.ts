import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab } from './lab.js';
import { processAlive } from '../store/process-alive.js';
import { namespaceExists } from './netns.js';
import { isDisklessError } from '../errors/index.js';

// Real namespaces (needs root); names are unique to this suite.
const NS = 'dl-t1';

async function fresh(t: { after: (fn: () => Promise<void>) => void }, options: { namespace?: string; extraAddresses?: string[] } = {}): Promise<Lab> {
  const dir = await mkdtemp(join(tmpdir(), 'dl-lab-test-'));
  const lab = new Lab({ namespace: options.namespace ?? NS, tapPrefix: 'dlt', stateDir: join(dir, 'state'), stopGraceMs: 500, extraAddresses: options.extraAddresses ?? [] });
  await lab.down();
  t.after(async () => {
    await lab.down();
    await rm(dir, { recursive: true, force: true });
  });
  return lab;
}

test('up creates the namespace, the bridge at the server address and a usable link-local address', async (t) => {
  const lab = await fresh(t, { extraAddresses: ['fd00:77::1/64'] });
  await lab.up();
  assert.ok(await namespaceExists(NS));
  const status = await lab.status();
  assert.equal(status.up, true);
  assert.equal(status.bridge?.name, 'br0');
  assert.equal(status.bridge?.mac, lab.bridgeMac);
  const addrs = status.bridge!.addresses;
  assert.ok(addrs.includes('10.77.0.1/24'), addrs.join(' '));
  assert.ok(addrs.includes('fd00:77::1/64'), addrs.join(' '));
  assert.ok(addrs.includes(`${lab.linkLocal}/64`), addrs.join(' '));
  assert.match(lab.linkLocal, /^fe80::[0-9a-f]{1,4}(:[0-9a-f]{1,4}){3}$/);
  // No DAD: the link-local address is not tentative, so an RA server can send from it at once.
  const flags = await lab.exec('ip', ['-6', 'addr', 'show', 'dev', 'br0']);
  assert.doesNotMatch(flags, /tentative/);
  // A VM-less bridge has no carrier; the address must be there anyway, and stay the only link-local once a port joins.
  await lab.addTap();
  assert.equal((await lab.bridgeAddresses()).filter((a) => a.startsWith('fe80:')).length, 1);
  // up again is a no-op.
  await lab.up();
  assert.deepEqual((await lab.status()).bridge?.addresses.slice().sort(), addrs.slice().sort());
});

test('taps join the bridge with the lowest free number and go away on removeTap', async (t) => {
  const lab = await fresh(t);
  await lab.up();
  const a = await lab.addTap();
  const b = await lab.addTap();
  assert.deepEqual([a, b], ['dlt0', 'dlt1']);
  let status = await lab.status();
  assert.deepEqual(status.taps.map((x) => x.name).sort(), ['dlt0', 'dlt1']);
  await lab.removeTap(a);
  await lab.removeTap(a);
  status = await lab.status();
  assert.deepEqual(status.taps.map((x) => x.name), ['dlt1']);
  assert.equal(await lab.addTap(), 'dlt0');
});

test('down stops every process in the namespace (also one ignoring SIGTERM), deletes it, and is idempotent', async (t) => {
  const lab = await fresh(t);
  await lab.up();
  const child = lab.spawn('sh', ['-c', 'trap "" TERM; while :; do sleep 1; done'], { stdio: 'ignore' });
  const detached = await lab.spawnDetached('sleeper', 'sleep', ['600']);
  await new Promise((r) => setTimeout(r, 200));
  const pids = await lab.pids();
  assert.ok(pids.includes(child.pid!), `${child.pid} in ${pids}`);
  assert.ok(pids.includes(detached), `${detached} in ${pids}`);
  const status = await lab.status();
  assert.deepEqual(status.recorded.map((r) => [r.name, r.alive]), [['sleeper', true]]);
  assert.ok(status.processes.some((p) => p.command === 'sleep 600'));
  await lab.down();
  assert.equal(await namespaceExists(NS), false);
  assert.equal(processAlive(detached), false);
  assert.equal(child.exitCode !== null || child.signalCode !== null || !processAlive(child.pid!), true);
  assert.equal(existsSync(lab.stateDir), false);
  await lab.down();
  const after = await lab.status();
  assert.equal(after.up, false);
  assert.deepEqual(after.processes, []);
});

test('operations on a lab that is not up fail with LAB_NOT_UP; bad options with LAB_INVALID_OPTION', async (t) => {
  const lab = await fresh(t);
  await assert.rejects(lab.addTap(), (e) => isDisklessError(e, 'LAB_NOT_UP'));
  await assert.rejects(lab.spawnDetached('x', 'true', []), (e) => isDisklessError(e, 'LAB_NOT_UP'));
  for (const bad of [{ namespace: 'a name with spaces' }, { namespace: 'x'.repeat(16) }, { address: '10.77.0' }, { prefixLength: 31 }, { tapPrefix: '0tap' }]) {
    assert.throws(() => new Lab(bad), (e) => isDisklessError(e, 'LAB_INVALID_OPTION'), JSON.stringify(bad));
  }
});

test('an iproute2 failure is LAB_COMMAND_FAILED with the stderr', async (t) => {
  const lab = await fresh(t);
  await lab.up();
  await assert.rejects(lab.addAddress('10.77.0.999/24'), (e) => isDisklessError(e, 'LAB_COMMAND_FAILED') && String(e.data.stderr).length > 0);
});
