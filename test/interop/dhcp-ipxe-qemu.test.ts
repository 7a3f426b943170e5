/**
 * Our DHCP server against the real PXE client of the lab: iPXE (the e1000 option ROM of
 * ipxe-qemu) in QEMU/TCG on a tap in a namespace of our own (LAB.md §1–2).
 * - authoritative: iPXE gets its address and its script URL from us, in one DORA (175.176
 *   no-pxedhcp makes it skip the ProxyDHCP wait);
 * - proxyDHCP beside dnsmasq: dnsmasq (its own namespace) gives the address, our server
 *   (another namespace, same bridge) gives the boot file by proxy offer and port-4011 ACK.
 * No HTTP server runs: seeing iPXE try our URL on its console is the end of this test (the
 * full boot to the marker is the lab's e2e). Needs root, QEMU and dnsmasq.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createNamespace, createVethPair, deleteNamespace, execIn, ipIn, spawnIn } from '../../src/lab/netns.js';
import { DhcpMessageType, DhcpOption, DhcpPort } from '../../src/wire/dhcp/dhcp-constants.js';
import { decodeDhcpMessage, encodeDhcpMessage, type DhcpMessage } from '../../src/wire/dhcp/dhcp-message.js';
import { ipv4Value } from '../../src/wire/dhcp/option-values.js';
import { decodeEthernetFrame, encodeEthernetFrame, EtherType, macToBuffer } from '../../src/wire/ethernet/ethernet-frame.js';
import { decodeIpv4Udp, encodeIpv4Udp } from '../../src/wire/ipv4-udp/ipv4-udp.js';
import { capturedDhcpPayloads } from '../support/dhcp-captures.js';
import { startDhcpServerProcess, type DhcpServerProcess } from '../support/dhcp-server-client.js';
import { startRawPeer } from '../support/raw-peer-client.js';

const tag = String(process.pid % 10000);
const labNs = `dd-ql${tag}`;
const srvNs = `dd-qs${tag}`;
const bridge = `dd-qb${tag}`;
const tap = `dd-qt${tag}`;
const VM_MAC = '52:54:00:dd:02:01';
const SCRIPT_URL = `/boot/${VM_MAC.replace(/:/g, '-')}.ipxe`;
const QEMU = '/usr/bin/qemu-system-x86_64';
const DNSMASQ = '/usr/sbin/dnsmasq';

/** A QEMU VM whose serial console we watch. */
interface Vm {
  console(): string;
  waitFor(pattern: RegExp, ms: number): Promise<RegExpMatchArray>;
  stop(): Promise<void>;
}

function startVm(): Vm {
  const args = ['-accel', 'tcg', '-m', '256', '-nographic', '-no-reboot', '-boot', 'n', '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`, '-device', `e1000,netdev=n0,mac=${VM_MAC}`];
  const child: ChildProcess = spawnIn(labNs, QEMU, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString('latin1')));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString('latin1')));
  // eslint-disable-next-line no-control-regex
  const clean = () => text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
  return {
    console: clean,
    async waitFor(pattern, ms) {
      const end = Date.now() + ms;
      for (;;) {
        const m = clean().match(pattern);
        if (m) return m;
        if (Date.now() > end || child.exitCode !== null) throw new Error(`console never showed ${pattern} in ${ms} ms:\n${clean().slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
      }
    },
  };
}

describe('DhcpServer with iPXE in QEMU', { timeout: 240_000 }, () => {
  let dir: string;
  const cleanups: Array<() => Promise<void>> = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dd-ipxe-'));
    await deleteNamespace(labNs);
    await deleteNamespace(srvNs);
    await createNamespace(labNs);
    await createNamespace(srvNs);
    // the lab segment: a bridge with the VM's tap and a veth to the server namespace
    await ipIn(labNs, 'link', 'add', bridge, 'type', 'bridge');
    await ipIn(labNs, 'link', 'set', bridge, 'up');
    await ipIn(labNs, 'addr', 'add', '10.204.0.1/24', 'dev', bridge);
    await ipIn(labNs, 'tuntap', 'add', 'dev', tap, 'mode', 'tap');
    await ipIn(labNs, 'link', 'set', tap, 'master', bridge);
    await ipIn(labNs, 'link', 'set', tap, 'up');
    await createVethPair(`dd-qv${tag}`, `dd-qw${tag}`, labNs, srvNs);
    await ipIn(labNs, 'link', 'set', `dd-qv${tag}`, 'master', bridge);
    await ipIn(srvNs, 'addr', 'add', '10.204.0.2/24', 'dev', `dd-qw${tag}`);
  });

  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await deleteNamespace(labNs);
    await deleteNamespace(srvNs);
    rmSync(dir, { recursive: true, force: true });
  });

  test('authoritative: iPXE takes its address and script URL from us', async () => {
    const server: DhcpServerProcess = await startDhcpServerProcess(srvNs, {
      config: {
        server: { address: '10.204.0.2', dataDir: join(dir, 'auth') },
        dhcp: { mode: 'authoritative', interfaces: [`dd-qw${tag}`], subnet: '10.204.0.0/24', pool: { start: '10.204.0.160', end: '10.204.0.170' } },
      },
    });
    cleanups.push(() => server.stop());
    const vm = startVm();
    cleanups.push(() => vm.stop());
    const started = Date.now();
    await vm.waitFor(new RegExp(`http://10\\.204\\.0\\.2:8080${SCRIPT_URL.replace(/\./g, '\\.')}`), 90_000);
    const seconds = (Date.now() - started) / 1000;
    await vm.stop();
    await server.stop();
    const leases = JSON.parse(readFileSync(join(dir, 'auth', 'dhcp-leases.json'), 'utf8')) as { leases: Array<{ mac: string; address: string }> };
    assert.deepEqual(leases.leases.map((l) => [l.mac, l.address]), [[VM_MAC, '10.204.0.160']]);
    assert.match(vm.console(), /10\.204\.0\.160/);
    // one DISCOVER/OFFER/REQUEST/ACK: iPXE did not go looking for ProxyDHCP
    assert.ok(seconds < 80, `script URL after ${seconds} s`);
  });

  test('proxyDHCP beside dnsmasq: address from dnsmasq, boot file from us (port 67 offer + port 4011 ACK)', async () => {
    const leaseFile = join(dir, 'dnsmasq.leases');
    const dnsmasq = spawn('ip', ['netns', 'exec', labNs, DNSMASQ, '--no-daemon', '--port=0', `--interface=${bridge}`, '--bind-interfaces', '--dhcp-range=10.204.0.100,10.204.0.150,1h', `--dhcp-leasefile=${leaseFile}`, '--pid-file=', '--log-dhcp'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let dnsmasqLog = '';
    dnsmasq.stderr!.on('data', (d: Buffer) => (dnsmasqLog += d.toString()));
    cleanups.push(async () => {
      if (dnsmasq.exitCode === null) {
        dnsmasq.kill('SIGTERM');
        await new Promise((r) => dnsmasq.once('exit', r));
      }
    });
    const server = await startDhcpServerProcess(srvNs, {
      config: {
        server: { address: '10.204.0.2', dataDir: join(dir, 'proxy') },
        dhcp: { mode: 'proxy', interfaces: [`dd-qw${tag}`], subnet: '10.204.0.0/24' },
      },
    });
    cleanups.push(() => server.stop());
    const vm = startVm();
    cleanups.push(() => vm.stop());
    await vm.waitFor(new RegExp(`http://10\\.204\\.0\\.2:8080${SCRIPT_URL.replace(/\./g, '\\.')}`), 90_000);
    await vm.stop();
    const metrics = await server.metrics();
    // iPXE takes the boot file straight from our proxy offer (it has siaddr and option 67, so
    // iPXE's dhcp_has_pxeopts() skips the ProxyDHCPREQUEST): no port-4011 round trip.
    assert.ok((await server.metric('diskless_dhcp_replies_total{type="2"}')) >= 1, `a proxy offer\n${metrics}`);
    assert.ok((await server.metric('diskless_dhcp_dropped_total{reason="other-server"}')) >= 1, 'the REQUEST to dnsmasq was not ours');
    assert.match(dnsmasqLog, new RegExp(`DHCPACK\\(${bridge}\\) 10\\.204\\.0\\.1\\d\\d ${VM_MAC}`), dnsmasqLog);
    assert.match(readFileSync(leaseFile, 'utf8'), new RegExp(VM_MAC));
    assert.match(vm.console(), /10\.204\.0\.1[0-4]\d/, 'iPXE shows the address dnsmasq gave');
    assert.equal(existsSync(join(dir, 'proxy', 'dhcp-leases.json')), false, 'proxy mode makes no leases');

    // Port 4011: replay iPXE's real ProxyDHCPREQUEST (captured against dnsmasq's proxy, which
    // sends no siaddr) from the lab side, addressed to our server: a unicast ACK comes back.
    const captured = capturedDhcpPayloads('ipxe-proxy-dnsmasq').find((p) => p.dstPort === DhcpPort.pxe)!;
    const request = decodeDhcpMessage(captured.payload);
    request.options.set(DhcpOption.serverIdentifier, ipv4Value('10.204.0.2'));
    const peer = await startRawPeer(labNs, bridge, EtherType.ipv4);
    cleanups.push(() => peer.stop());
    const serverMac = JSON.parse(await execIn(srvNs, 'ip', ['-j', 'link', 'show', `dd-qw${tag}`]))[0].address as string;
    const payload = encodeDhcpMessage({ ...request, ciaddr: '10.204.0.1' });
    const ip = encodeIpv4Udp({ source: '10.204.0.1', destination: '10.204.0.2', sourcePort: DhcpPort.client, destinationPort: DhcpPort.pxe, payload });
    await peer.request({ op: 'send', hex: encodeEthernetFrame(macToBuffer(serverMac), Buffer.from(peer.mac, 'hex'), EtherType.ipv4, ip).toString('hex') });
    let ack: DhcpMessage | undefined;
    for (const end = Date.now() + 5000; !ack && Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
      for (const hex of (await peer.request({ op: 'received' })).frames ?? []) {
        const datagram = decodeIpv4Udp(decodeEthernetFrame(Buffer.from(hex, 'hex')).payload, { acceptPartialUdpChecksum: true });
        if (datagram.sourcePort === DhcpPort.pxe && datagram.destinationPort === DhcpPort.client) ack = decodeDhcpMessage(datagram.payload);
      }
    }
    assert.ok(ack, 'an answer from port 4011');
    assert.equal(ack.options.get(DhcpOption.messageType)?.[0], DhcpMessageType.ack);
    assert.equal(ack.xid, request.xid);
    assert.equal(ack.options.get(DhcpOption.vendorClassIdentifier)?.toString(), 'PXEClient');
    assert.match(ack.options.get(DhcpOption.bootfileName)?.toString() ?? '', new RegExp(SCRIPT_URL.replace(/\./g, '\\.').replace('52-54-00-dd-02-01', '52-54-00-dd-00-01')));
  });
});
