/**
 * ATA over Ethernet end to end: `diskless serve` (DHCP, RA, TFTP, HTTP and the AoE target; no
 * iSCSI at all) on the lab bridge, volumes in the embedded pool — a golden image carrying the
 * demo marker disk and one writable clone of it per node — each clone exported at its own
 * shelf.slot on the bridge.
 *
 * - node-a (`boot: sanboot`, `san: aoe`) powers on in QEMU with the e1000's iPXE ROM, gets
 *   `sanboot aoe:e7.3` in its script and boots its clone's MBR to DISKLESS-OK; the target
 *   counts the ATA reads.
 * - node-b's script names its own clone, e7.4, but that export's mask list (`allow`) holds
 *   node-a's MAC only: the target stays silent to node-b, its sanboot fails, and every frame it
 *   sent is counted as `diskless_aoe_dropped_total{reason="masked"}`.
 * - After both, with the server stopped, the pool shows golden@base (and the golden volume)
 *   still byte-for-byte the demo disk it was imported from.
 *
 * One server for both VMs. Run with the benchmark lock held (QEMU under TCG):
 *   flock /tmp/zfs-tests.lock node scripts/run-tests.mjs aoe-boot
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { labUp } from '../../src/cli/lab-command.js';
import { BootStage } from '../../src/lab/boot-timeline.js';
import { Lab } from '../../src/lab/lab.js';
import { runBoot, type BootRun } from '../../src/lab/run-boot.js';
import { AoeMetric } from '../../src/services/aoe/aoe-target.js';
import { DEMO_DISK_SIZE, DEMO_MARKER, writeDemoDisk } from '../../src/store/demo-disk.js';
import { EmbeddedStorageDriver } from '../../src/store/embedded/embedded-storage-driver.js';
import { digest } from '../store/conformance/conformance-support.js';
import { labServerMetrics, metricValue } from '../support/server-metrics.js';

const NS = 'dl-e2e-aoe';
const SHELF = 7;
const NODE_A = { name: 'node-a', mac: '52:54:00:ae:0e:0a', slot: 3 } as const;
const NODE_B = { name: 'node-b', mac: '52:54:00:ae:0e:0b', slot: 4 } as const;
const label = (slot: number) => `e${SHELF}.${slot}`;
/**
 * The error this iPXE ROM (1.0.0+git-20190125) prints when a SAN device never answers:
 * "Could not open SAN device: Connection timed out (http://ipxe.org/4c006035)", after ~16 s of
 * Query Config retransmissions (docs/aoe.md, "iPXE in the lab").
 */
const IPXE_SAN_OPEN_TIMED_OUT = '4c006035';

const consoleText = (run: BootRun) => run.transcript.map((c) => c.text).join('');
const stages = (run: BootRun) => run.events.map((e) => e.stage);

test('AoE in the lab: a node sanboots its clone of the golden image over AoE; a node off the mask list cannot; the golden snapshot is unchanged', { timeout: 300_000 }, async (t) => {
  const workDir = await mkdtemp(join(tmpdir(), `${NS}-`));
  const dataDir = join(workDir, 'data');
  const pool = join(dataDir, 'pool');
  t.after(async () => {
    await new Lab({ namespace: NS }).down();
    await rm(workDir, { recursive: true, force: true });
  });
  await new Lab({ namespace: NS }).down();

  // What the golden volume is imported as (`source: demo` writes this same disk).
  const demoImage = join(workDir, 'demo.img');
  await writeDemoDisk(demoImage, DEMO_DISK_SIZE);
  const golden = createHash('sha256').update(await readFile(demoImage)).digest('hex');
  await rm(demoImage);

  const doc = {
    server: { address: '10.77.0.1', dataDir },
    iscsi: { enabled: false },
    storage: { driver: 'embedded', pool },
    aoe: {
      enabled: true,
      interfaces: ['br0'],
      exports: [
        // Mask list by default: the MACs of the nodes that boot node-a, i.e. node-a's.
        { volume: NODE_A.name, shelf: SHELF, slot: NODE_A.slot },
        // node-b's own clone, but only node-a is on its mask list.
        { volume: NODE_B.name, shelf: SHELF, slot: NODE_B.slot, allow: [NODE_A.mac] },
      ],
    },
    nodes: [NODE_A, NODE_B].map((n) => ({ name: n.name, mac: n.mac, boot: 'sanboot', san: 'aoe', volume: n.name })),
    volumes: [{ name: 'golden', source: 'demo', readOnly: true }, ...[NODE_A, NODE_B].map((n) => ({ name: n.name, clone: 'golden@base' }))],
  };
  const configPath = join(workDir, 'diskless.yaml');
  await mkdir(dataDir, { recursive: true });
  await writeFile(configPath, stringify(doc));
  const { lab } = await labUp({ namespace: NS, config: configPath, out: new Writable({ write: (_c, _e, cb) => cb() }) });
  const serverLog = async () => (await readFile(lab.logPath('serve'), 'utf8').catch(() => '')).slice(-2500);
  const explain = async (run: BootRun) => `outcome ${run.outcome} ${run.failure?.line ?? ''}\nconsole: ${consoleText(run).slice(-2000)}\nserver: ${await serverLog()}`;

  await t.test(`${NODE_A.name} boots its clone over AoE (${label(NODE_A.slot)}) to the marker, and the target counts the ATA reads`, { timeout: 90_000 }, async (st) => {
    const before = await labServerMetrics(lab);
    assert.equal(metricValue(before, AoeMetric.bytesRead, { target: label(NODE_A.slot) }), 0);
    const tap = await lab.addTap();
    const run = await runBoot({ namespace: NS, tap, mac: NODE_A.mac, timeoutMs: 60_000 });
    await lab.removeTap(tap);
    assert.equal(run.outcome, 'marker', await explain(run));
    assert.deepEqual(stages(run), [BootStage.PowerOn, BootStage.Firmware, BootStage.Ipxe, BootStage.Nic, BootStage.Dhcp, BootStage.Script, BootStage.San, BootStage.Marker]);
    const text = consoleText(run);
    assert.ok(text.includes(`booting volume ${NODE_A.name} from aoe:${label(NODE_A.slot)}`), `the script sanbooted over AoE: ${await explain(run)}`);
    st.diagnostic(`${NODE_A.name}: ${DEMO_MARKER} at ${((run.markerMs ?? 0) / 1000).toFixed(1)} s (script ${(run.events.find((e) => e.stage === BootStage.Script)!.atMs / 1000).toFixed(1)} s, SAN ${(run.events.find((e) => e.stage === BootStage.San)!.atMs / 1000).toFixed(1)} s)`);

    const m = await labServerMetrics(lab);
    const target = { target: label(NODE_A.slot) };
    const read = metricValue(m, AoeMetric.bytesRead, target);
    const ata = metricValue(m, AoeMetric.requests, { ...target, command: 'ata' });
    // At least the MBR (one sector) was read through the target, by ATA commands.
    assert.ok(read >= 512 && read % 512 === 0, `bytes read from ${label(NODE_A.slot)}: ${read}`);
    assert.ok(ata >= 1, `ATA requests to ${label(NODE_A.slot)}: ${ata}`);
    assert.equal(metricValue(m, AoeMetric.dropped, { ...target, reason: 'masked' }), 0, `nothing from ${NODE_A.name} was masked`);
    st.diagnostic(`${label(NODE_A.slot)}: ${ata} ATA requests, ${read} bytes read, ${metricValue(m, AoeMetric.requests, { ...target, command: 'config' })} Query Config`);
  });

  await t.test(`${NODE_B.name}, not on ${label(NODE_B.slot)}'s mask list, cannot read it: sanboot fails and the target counts the masked frames`, { timeout: 150_000 }, async (st) => {
    const target = { target: label(NODE_B.slot) };
    const before = metricValue(await labServerMetrics(lab), AoeMetric.dropped, { ...target, reason: 'masked' });
    const tap = await lab.addTap();
    const run = await runBoot({ namespace: NS, tap, mac: NODE_B.mac, timeoutMs: 120_000 });
    await lab.removeTap(tap);
    const text = consoleText(run);
    assert.equal(run.outcome, 'failed', await explain(run));
    assert.equal(run.failure?.detail.error, IPXE_SAN_OPEN_TIMED_OUT, `iPXE got no answer at all: ${await explain(run)}`);
    assert.ok(text.includes(`booting volume ${NODE_B.name} from aoe:${label(NODE_B.slot)}`), `the script tried AoE: ${await explain(run)}`);
    assert.ok(!stages(run).includes(BootStage.San) && !text.includes(DEMO_MARKER), `no SAN device, no marker: ${await explain(run)}`);
    st.diagnostic(`${NODE_B.name}: failed at ${((run.failure?.atMs ?? 0) / 1000).toFixed(1)} s: ${run.failure?.line ?? ''}`);

    const m = await labServerMetrics(lab);
    const masked = metricValue(m, AoeMetric.dropped, { ...target, reason: 'masked' });
    assert.ok(masked > before, `masked drops on ${label(NODE_B.slot)}: ${before} → ${masked}`);
    assert.equal(metricValue(m, AoeMetric.bytesRead, target), 0, `nothing was read from ${label(NODE_B.slot)}`);
    assert.equal(metricValue(m, AoeMetric.requests, target), 0, `no request to ${label(NODE_B.slot)} was executed`);
    st.diagnostic(`${label(NODE_B.slot)}: ${masked - before} frames from ${NODE_B.mac} dropped as masked`);
  });

  await t.test('with the server stopped, golden@base and the golden volume are still the demo disk; the clones were only read', async () => {
    await lab.down();
    const driver = await EmbeddedStorageDriver.open({ pool });
    try {
      assert.equal(await digest(driver, 'golden', 'base'), golden, 'golden@base is the imported demo disk');
      assert.equal(await digest(driver, 'golden'), golden, 'the golden volume is unchanged');
      for (const n of [NODE_A, NODE_B]) assert.equal(await digest(driver, n.name), golden, `${n.name}'s clone was only read`);
      assert.deepEqual((await driver.listSnapshots('golden')).map((s) => [s.name, s.clones]), [['base', [NODE_A.name, NODE_B.name]]]);
    } finally {
      await driver.close();
    }
  });
});
