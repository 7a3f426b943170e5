/**
 * The spine of the product, end to end: a QEMU VM (SeaBIOS + the e1000's iPXE ROM) powers on
 * in the lab and boots the demo disk to the DISKLESS-OK marker from servers that are all ours
 * (`diskless serve`: DHCP, RA, TFTP, HTTP, iSCSI) — in authoritative mode as a new node and
 * again as a known one, with a CHAP-protected volume, and in proxyDHCP mode beside a plain
 * dnsmasq on another host of the segment that hands out the addresses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { validateConfig } from '../../src/config/load-config.js';
import { BootStage } from '../../src/lab/boot-timeline.js';
import { Lab } from '../../src/lab/lab.js';
import { createNamespace, createVethPair, deleteNamespace, ipIn, spawnIn } from '../../src/lab/netns.js';
import { runBoot, type BootRun } from '../../src/lab/run-boot.js';
import { ServeStack } from '../../src/lab/serve-stack.js';

const FULL_CHAIN = [BootStage.PowerOn, BootStage.Firmware, BootStage.Ipxe, BootStage.Nic, BootStage.Dhcp, BootStage.Script, BootStage.San, BootStage.Marker];

function explain(run: BootRun, server: string): string {
  return `outcome ${run.outcome} ${run.failure?.line ?? ''}\nconsole: ${run.transcript.map((c) => c.text).join('').slice(-1200)}\nserver: ${server.slice(-2000)}`;
}

async function startStack(t: { after(fn: () => unknown): void }, namespace: string, document: Record<string, unknown>) {
  const workDir = await mkdtemp(join(tmpdir(), `${namespace}-`));
  const doc = { ...document, server: { address: '10.77.0.1', dataDir: join(workDir, 'data') } };
  const config = validateConfig(doc);
  const configPath = join(workDir, 'diskless.yaml');
  await writeFile(configPath, stringify(doc));
  const lab = new Lab({ namespace, tapPrefix: 'dle', stateDir: join(workDir, 'state') });
  await lab.down();
  const stack = new ServeStack({ lab, configPath, config });
  t.after(async () => {
    await stack.stop().catch(() => undefined);
    await lab.down();
    await rm(workDir, { recursive: true, force: true });
  });
  await lab.up();
  await stack.start();
  return { lab, stack, config, workDir };
}

test('authoritative: a new node and then a known node boot the demo disk over iSCSI; a CHAP node logs in with its secret', { timeout: 120_000 }, async (t) => {
  const plain = '52:54:00:e2:e0:01';
  const chap = '52:54:00:e2:e0:02';
  const { lab, stack, config } = await startStack(t, 'dl-e2e-auth', {
    nodes: [
      { name: 'plain', mac: plain, volume: 'demo' },
      { name: 'secure', mac: chap, volume: 'secure', chap: { username: 'secure-node', secret: 'a-long-chap-secret' } },
    ],
    volumes: [
      { name: 'demo', source: 'demo' },
      { name: 'secure', source: 'demo' },
    ],
  });
  const tap = await lab.addTap();
  for (const [run, mac] of [['new node', plain], ['known node', plain], ['CHAP node', chap]] as const) {
    const stages: string[] = [];
    const result = await runBoot({ namespace: lab.namespace, tap, mac, timeoutMs: 40_000, onEvent: (e) => stages.push(e.stage) });
    assert.equal(result.outcome, 'marker', `${run}: ${explain(result, stack.output)}`);
    assert.deepEqual(stages, FULL_CHAIN, run);
    const script = result.events.find((e) => e.stage === BootStage.Script);
    assert.equal(script?.detail.url, `http://10.77.0.1:8080/boot/${mac.replace(/:/g, '-')}.ipxe`, run);
  }
  // Both nodes hold leases from our pool, persisted to disk.
  const leases = await readFile(join(config.server.dataDir, 'dhcp-leases.json'), 'utf8');
  assert.match(leases, new RegExp(plain));
  assert.match(leases, new RegExp(chap));
});

test('proxyDHCP: dnsmasq on another host hands out the address, our proxy offer the boot; the VM still boots the demo disk', { timeout: 120_000 }, async (t) => {
  const mac = '52:54:00:e2:e0:11';
  const { lab, stack } = await startStack(t, 'dl-e2e-proxy', {
    dhcp: { mode: 'proxy' },
    nodes: [{ name: 'proxied', mac, volume: 'demo' }],
    volumes: [{ name: 'demo', source: 'demo' }],
  });
  // A second host on the segment: namespace with a veth whose peer joins the lab bridge.
  const peerNs = 'dl-e2e-pxdns';
  await deleteNamespace(peerNs);
  await createNamespace(peerNs);
  const workDir = await mkdtemp(join(tmpdir(), 'dl-e2e-pxdns-'));
  const leaseFile = join(workDir, 'dnsmasq.leases');
  let dnsmasqOutput = '';
  const dnsmasq = { child: undefined as ReturnType<typeof spawnIn> | undefined };
  t.after(async () => {
    dnsmasq.child?.kill('SIGKILL');
    await deleteNamespace(peerNs);
    await rm(workDir, { recursive: true, force: true });
  });
  await createVethPair('dle-px0', 'dle-px1', lab.namespace, peerNs);
  await ipIn(lab.namespace, 'link', 'set', 'dle-px0', 'master', lab.bridge);
  await ipIn(peerNs, 'addr', 'add', '10.77.0.2/24', 'dev', 'dle-px1');
  // dnsmasq as an office network's DHCP server: addresses only, no PXE, no RA.
  dnsmasq.child = spawnIn(peerNs, 'dnsmasq', [
    '--no-daemon', '--port=0', '--interface=dle-px1', '--bind-interfaces', '--log-dhcp',
    `--dhcp-leasefile=${leaseFile}`, '--dhcp-range=10.77.0.150,10.77.0.199,1h', '--conf-file=/dev/null', '--pid-file=',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  dnsmasq.child.stdout?.on('data', (d: Buffer) => (dnsmasqOutput += d.toString()));
  dnsmasq.child.stderr?.on('data', (d: Buffer) => (dnsmasqOutput += d.toString()));

  const tap = await lab.addTap();
  const stages: string[] = [];
  const result = await runBoot({ namespace: lab.namespace, tap, mac, timeoutMs: 40_000, onEvent: (e) => stages.push(e.stage) });
  assert.equal(result.outcome, 'marker', `${explain(result, stack.output)}\ndnsmasq: ${dnsmasqOutput.slice(-1500)}`);
  assert.deepEqual(stages, FULL_CHAIN);
  // The address came from dnsmasq's range, not from us.
  const dhcp = result.events.find((e) => e.stage === BootStage.Dhcp);
  assert.ok(dhcp);
  assert.match(await readFile(leaseFile, 'utf8'), new RegExp(`${mac} 10\\.77\\.0\\.1[5-9]\\d `));
  assert.match(result.transcript.map((c) => c.text).join(''), /http:\/\/10\.77\.0\.1:8080\/boot\/52-54-00-e2-e0-11\.ipxe/);
});
