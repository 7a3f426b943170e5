/**
 * Re-creates the AoE golden captures of src/wire/aoe/testdata (its README says what each holds).
 * Not part of `make test`. Root; needs qemu-system-x86, ipxe-qemu, ipxe, dnsmasq-base, vblade,
 * tcpdump and a built tree (`npx tsc -p . && make native`). Run, holding the benchmark lock
 * because QEMU runs under TCG for a few seconds:
 *
 *   flock /tmp/zfs-tests.lock node dist/test/support/aoe-capture.js
 *
 * Everything happens in network namespace `aoecap`, deleted at the end:
 *   ipxe-sanboot.pcap     QEMU's e1000 iPXE ROM gets `sanboot aoe:e1.1` from the dnsmasq peer
 *                         (DHCP + TFTP script) and boots the demo disk's MBR (DISKLESS-OK) from
 *                         `vblade 1 1 br0 disk`; tcpdump on the lab bridge from before vblade starts.
 *   vblade-commands.pcap  hand-built requests (Query Config with each CCmd, Reserve/Release,
 *                         ATA reads/writes/errors, an unknown command, Mac Mask List edits) sent by
 *                         test/support/raw-peer.ts over a veth pair to `vblade 7 3`, and its answers.
 * Then regenerate the readable dumps: `UPDATE_GOLDEN=1 node scripts/run-tests.mjs aoe-golden`.
 */
import { copyFile, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, sleep } from '../../src/lab/lab.js';
import { createVethPair, ipIn } from '../../src/lab/netns.js';
import { DaemonProcess } from '../../src/lab/peers/daemon-process.js';
import { DNSMASQ_PEER_DEFAULTS, DnsmasqPeer } from '../../src/lab/peers/dnsmasq-peer.js';
import { runBoot } from '../../src/lab/run-boot.js';
import { DEMO_DISK_MIN_SIZE, writeDemoDisk } from '../../src/store/demo-disk.js';
import { AOE_BROADCAST_SHELF, AOE_BROADCAST_SLOT, AOE_VERSION, AoeCommand, AoeFlag, type AoeHeader } from '../../src/wire/aoe/aoe-header.js';
import { encodeAoeFrame } from '../../src/wire/aoe/aoe-frame.js';
import { AtaFlag, AtaOpcode, SECTOR_SIZE, writeAtaHeader, type AtaArg } from '../../src/wire/aoe/ata-command.js';
import { ConfigCommand, encodeQueryConfig } from '../../src/wire/aoe/query-config.js';
import { encodeMacMaskList, MaskCommand, MaskDirective } from '../../src/wire/aoe/mac-mask-list.js';
import { encodeReserveRelease, ReserveCommand } from '../../src/wire/aoe/reserve-release.js';
import { AOE_TESTDATA, CAPTURE_CONFIG, COMMANDS_TAG_BASE, COMMANDS_TARGET, SPOOFED_MAC } from './aoe-captures.js';
import { startRawPeer, type RawPeer } from './raw-peer-client.js';

const NS = 'aoecap';
const VM_MAC = '52:54:00:ae:00:01';

/** Spawns tcpdump for AoE frames on `ifname` in the lab and resolves once it listens. */
async function startTcpdump(lab: Lab, ifname: string, file: string): Promise<DaemonProcess> {
  const d = new DaemonProcess('tcpdump', lab.spawn('tcpdump', ['-U', '--immediate-mode', '-i', ifname, '-s', '0', '-w', file, 'ether proto 0x88a2'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  await d.waitReady(() => /listening on/.test(d.output), 10_000);
  return d;
}

/** Spawns vblade SHELF SLOT IFACE FILE in the lab and resolves once it printed its banner. */
async function startVblade(lab: Lab, shelf: number, slot: number, ifname: string, file: string): Promise<DaemonProcess> {
  const d = new DaemonProcess('vblade', lab.spawn('vblade', [String(shelf), String(slot), ifname, file], { stdio: ['ignore', 'pipe', 'pipe'] }));
  await d.waitReady(() => /sectors/.test(d.output), 10_000);
  return d;
}

async function captureSanboot(lab: Lab, workDir: string): Promise<void> {
  const tftpRoot = join(workDir, 'tftp');
  await mkdir(tftpRoot, { recursive: true });
  await copyFile(join('/usr/lib/ipxe', DNSMASQ_PEER_DEFAULTS.biosBootFile), join(tftpRoot, DNSMASQ_PEER_DEFAULTS.biosBootFile));
  await writeFile(join(tftpRoot, DNSMASQ_PEER_DEFAULTS.ipxeScript), '#!ipxe\nsanboot aoe:e1.1\n');
  const disk = join(workDir, 'sanboot.img');
  await writeDemoDisk(disk, DEMO_DISK_MIN_SIZE);
  // A bridge without a port that has carrier drops what vblade sends (its announcement at start):
  // give it one, a veth pair whose far end nobody reads.
  await createVethPair('aoecapd0', 'aoecapd1', lab.namespace, lab.namespace);
  await ipIn(lab.namespace, 'link', 'set', 'aoecapd0', 'master', lab.bridge);
  const dnsmasq = new DnsmasqPeer({ lab, tftpRoot, workDir, tuned: true });
  const tcpdump = await startTcpdump(lab, lab.bridge, join(AOE_TESTDATA, 'ipxe-sanboot.pcap'));
  let vblade: DaemonProcess | undefined;
  try {
    await dnsmasq.start();
    vblade = await startVblade(lab, 1, 1, lab.bridge, disk);
    const tap = await lab.addTap();
    const run = await runBoot({ namespace: lab.namespace, tap, mac: VM_MAC, timeoutMs: 60_000 });
    if (run.outcome !== 'marker') throw new Error(`sanboot did not reach the marker (${run.outcome}):\n${run.transcript.map((c) => c.text).join('').slice(-1500)}`);
    console.log(`ipxe-sanboot: marker at ${run.markerMs} ms`);
    await sleep(1000);
  } finally {
    await tcpdump.stop('SIGINT', 2000);
    await vblade?.stop('SIGTERM', 2000);
    await dnsmasq.stop();
  }
}

interface Exchange {
  readonly header: Omit<AoeHeader, 'tag' | 'version' | 'flags' | 'error'> & { version?: number };
  readonly arg: Buffer[];
  /** Source MAC (hex); default the raw peer's. */
  readonly source?: string;
  /** Broadcast Ethernet destination (default: vblade's MAC). */
  readonly broadcast?: boolean;
  /** false when vblade stays silent (a Query Config test that does not match). */
  readonly answered: boolean;
}

function ata(arg: Omit<AtaArg, 'data'>, data: Buffer = Buffer.alloc(0)): Buffer[] {
  const h = Buffer.alloc(12);
  writeAtaHeader(arg, h);
  return [h, data];
}

/** The requests of vblade-commands.pcap, in order: request i has tag COMMANDS_TAG_BASE + i (aoe-golden.test.ts relies on the order). */
export function commandRequests(peerMac: string, sectors: number): Exchange[] {
  const t = COMMANDS_TARGET;
  const qc = (command: number, config: string, answered = true, version = AOE_VERSION): Exchange => ({
    header: { shelf: t.shelf, slot: t.slot, command: AoeCommand.queryConfig, version },
    arg: [encodeQueryConfig({ bufferCount: 0, firmwareVersion: 0, sectorCount: 0, aoeVersion: 0, command, config: Buffer.from(config) })],
    answered,
  });
  const peer = Buffer.from(peerMac, 'hex');
  const other = Buffer.from('525400aabbcc', 'hex');
  const mask = (command: number, directives: Array<[number, Buffer]>): Exchange => ({
    header: { shelf: t.shelf, slot: t.slot, command: AoeCommand.macMaskList },
    arg: [encodeMacMaskList({ command, error: 0, directives: directives.map(([c, mac]) => ({ command: c, mac })) })],
    answered: true,
  });
  const rr = (command: number, macs: Buffer[], source?: string): Exchange => ({
    header: { shelf: t.shelf, slot: t.slot, command: AoeCommand.reserveRelease },
    arg: [encodeReserveRelease({ command, macs })],
    answered: true,
    ...(source === undefined ? {} : { source }),
  });
  const cmd = (a: Omit<AtaArg, 'data'>, data?: Buffer, source?: string): Exchange => ({
    header: { shelf: t.shelf, slot: t.slot, command: AoeCommand.ata },
    arg: ata(a, data),
    answered: true,
    ...(source === undefined ? {} : { source }),
  });
  // Non-extended commands carry the device register (LBA mode 0xe0, as iPXE sends it) in LBA3's high nibble.
  const dev = 0xe0 * 2 ** 24;
  const pattern = Buffer.alloc(SECTOR_SIZE);
  for (let i = 0; i < SECTOR_SIZE; i++) pattern[i] = (i * 7 + 3) & 0xff;
  return [
    { ...qc(ConfigCommand.read, ''), header: { shelf: AOE_BROADCAST_SHELF, slot: AOE_BROADCAST_SLOT, command: AoeCommand.queryConfig }, broadcast: true },
    qc(ConfigCommand.forceSet, CAPTURE_CONFIG),
    qc(ConfigCommand.testExact, CAPTURE_CONFIG),
    qc(ConfigCommand.testPrefix, 'diskless'),
    qc(ConfigCommand.testExact, 'diskless', false),
    qc(ConfigCommand.setIfEmpty, 'other'),
    qc(9, ''),
    qc(ConfigCommand.read, '', true, 2),
    rr(ReserveCommand.read, []),
    rr(ReserveCommand.set, [peer]),
    cmd({ flags: AtaFlag.extended, featureOrError: 0, sectorCount: 1, commandOrStatus: AtaOpcode.readSectorsExt, lba: 0 }, undefined, SPOOFED_MAC),
    rr(ReserveCommand.set, [], SPOOFED_MAC),
    rr(ReserveCommand.forceSet, []),
    cmd({ flags: 0, featureOrError: 0, sectorCount: 1, commandOrStatus: AtaOpcode.identifyDevice, lba: dev }),
    cmd({ flags: 0, featureOrError: 0, sectorCount: 1, commandOrStatus: AtaOpcode.readSectors, lba: dev }),
    cmd({ flags: AtaFlag.extended, featureOrError: 0, sectorCount: 2, commandOrStatus: AtaOpcode.readSectorsExt, lba: 1 }),
    cmd({ flags: AtaFlag.extended | AtaFlag.write, featureOrError: 0, sectorCount: 1, commandOrStatus: AtaOpcode.writeSectorsExt, lba: 100 }, pattern),
    cmd({ flags: AtaFlag.extended, featureOrError: 0, sectorCount: 1, commandOrStatus: AtaOpcode.readSectorsExt, lba: 100 }),
    cmd({ flags: AtaFlag.extended, featureOrError: 0, sectorCount: 2, commandOrStatus: AtaOpcode.readSectorsExt, lba: sectors - 1 }),
    cmd({ flags: 0, featureOrError: 0, sectorCount: 0, commandOrStatus: AtaOpcode.checkPowerMode, lba: dev }),
    cmd({ flags: 0, featureOrError: 0, sectorCount: 0, commandOrStatus: AtaOpcode.flushCache, lba: dev }),
    cmd({ flags: 0, featureOrError: 0x02, sectorCount: 0, commandOrStatus: 0xef, lba: dev }), // SET FEATURES: not served
    cmd({ flags: AtaFlag.extended, featureOrError: 0, sectorCount: 3, commandOrStatus: AtaOpcode.readSectorsExt, lba: 0 }), // more than vblade's 2 sectors
    { header: { shelf: t.shelf, slot: t.slot, command: 5 }, arg: [Buffer.from('unknown command')], answered: true },
    mask(MaskCommand.read, []),
    // vblade 25 deletes nothing here (its rmmask bounds the search by the entry count, not
    // bytes), and deleting a MAC it does find crashes it: no request deletes a listed MAC.
    mask(MaskCommand.edit, [[MaskDirective.add, peer], [MaskDirective.add, other], [MaskDirective.delete, other], [MaskDirective.none, Buffer.alloc(6)]]),
    mask(MaskCommand.edit, [[MaskDirective.none, Buffer.alloc(6)], [7, other]]),
  ];
}

async function captureCommands(lab: Lab, workDir: string): Promise<void> {
  const disk = join(workDir, 'commands.img');
  await writeDemoDisk(disk, DEMO_DISK_MIN_SIZE);
  const sectors = (await stat(disk)).size / SECTOR_SIZE;
  await createVethPair('aoecapv0', 'aoecapv1', lab.namespace, lab.namespace);
  const link = JSON.parse(await ipIn(lab.namespace, '-j', 'link', 'show', 'dev', 'aoecapv0')) as Array<{ address: string }>;
  const vbladeMac = Buffer.from(link[0]!.address.replaceAll(':', ''), 'hex');
  const tcpdump = await startTcpdump(lab, 'aoecapv0', join(AOE_TESTDATA, 'vblade-commands.pcap'));
  let vblade: DaemonProcess | undefined;
  let peer: RawPeer | undefined;
  try {
    peer = await startRawPeer(lab.namespace, 'aoecapv1', 0x88a2);
    vblade = await startVblade(lab, COMMANDS_TARGET.shelf, COMMANDS_TARGET.slot, 'aoecapv0', disk);
    await sleep(200);
    const requests = commandRequests(peer.mac, sectors);
    for (const [i, x] of requests.entries()) {
      await peer.request({ op: 'clear' });
      const header: AoeHeader = { version: x.header.version ?? AOE_VERSION, flags: 0, error: 0, shelf: x.header.shelf, slot: x.header.slot, command: x.header.command, tag: COMMANDS_TAG_BASE + i };
      const dst = x.broadcast ? Buffer.alloc(6, 0xff) : vbladeMac;
      await peer.request({ op: 'send', hex: encodeAoeFrame(dst, Buffer.from(x.source ?? peer.mac, 'hex'), header, ...x.arg).toString('hex') });
      const deadline = Date.now() + (x.answered ? 3000 : 300);
      let got = false;
      while (Date.now() < deadline && !got) {
        const r = await peer.request({ op: 'received' });
        got = (r.frames ?? []).some((f) => (Buffer.from(f, 'hex')[14]! & AoeFlag.response) !== 0 && Buffer.from(f, 'hex').readUInt32BE(20) === header.tag);
        if (!got) await sleep(10);
      }
      if (got !== x.answered) throw new Error(`request #${i} (command ${header.command}): ${got ? 'answered' : 'no answer'}, expected ${x.answered ? 'an answer' : 'silence'}`);
    }
    console.log(`vblade-commands: ${requests.length} requests`);
    await sleep(1000);
  } finally {
    await peer?.stop();
    await tcpdump.stop('SIGINT', 2000);
    await vblade?.stop('SIGTERM', 2000);
  }
}

async function main(): Promise<void> {
  const workDir = await mkdtemp(join(tmpdir(), 'aoecap-'));
  const lab = new Lab({ namespace: NS, tapPrefix: 'aoecapt', stateDir: join(workDir, 'state') });
  await lab.down();
  try {
    await lab.up();
    await mkdir(AOE_TESTDATA, { recursive: true });
    await captureSanboot(lab, workDir);
    await captureCommands(lab, workDir);
  } finally {
    await lab.down();
    await rm(workDir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) await main();
