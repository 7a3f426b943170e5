/**
 * Our DHCP server (authoritative) against a real client, busybox udhcpc, over a veth pair
 * between two namespaces of our own: the client gets an address, renews it (unicast), keeps
 * it across a server restart (leases persisted), releases it; a second client gets another
 * address; reservations are honoured; malformed and foreign packets are counted. Needs root
 * and busybox-static.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createNamespace, createVethPair, deleteNamespace, ipIn } from '../../src/lab/netns.js';
import { startDhcpServerProcess, type DhcpServerProcess } from '../support/dhcp-server-client.js';
import { startRawPeer, type RawPeer } from '../support/raw-peer-client.js';
import { BootpOp, DhcpMessageType, DhcpOption, HardwareType } from '../../src/wire/dhcp/dhcp-constants.js';
import { decodeDhcpMessage, encodeDhcpMessage, type DhcpMessage } from '../../src/wire/dhcp/dhcp-message.js';
import { ipv4Value, uint8Value } from '../../src/wire/dhcp/option-values.js';
import { BROADCAST_MAC, decodeEthernetFrame, encodeEthernetFrame, EtherType, macToString } from '../../src/wire/ethernet/ethernet-frame.js';
import { decodeIpv4Udp, encodeIpv4Udp } from '../../src/wire/ipv4-udp/ipv4-udp.js';

const tag = String(process.pid % 10000);
const srvNs = `dd-us${tag}`;
const cliNs = `dd-uc${tag}`;
/** The server answers on a bridge, as in the lab (br0): clients' veths are its ports. */
const srvIf = `dd-ub${tag}`;
const cliIf = `dd-uc${tag}`;
const cli2If = `dd-ud${tag}`;
const rawIf = `dd-ur${tag}`;
const SERVER = '10.203.0.1';
const CLIENT_MAC = '52:54:00:dd:01:01';
const CLIENT2_MAC = '52:54:00:dd:01:02';
const BUSYBOX = '/bin/busybox';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Udhcpc {
  readonly child: ChildProcess;
  /** Events the script saw: "bound 10.203.0.100", "renew 10.203.0.100", "deconfig", "nak"... */
  events(): string[];
  waitFor(prefix: string, after: number, ms?: number): Promise<string>;
  stop(): Promise<void>;
}

describe('DhcpServer with busybox udhcpc over a veth pair', { timeout: 120_000 }, () => {
  let dir: string;
  let server: DhcpServerProcess | undefined;
  let peer: RawPeer | undefined;
  const clients: Udhcpc[] = [];

  const serverOptions = () => ({
    config: {
      server: { address: SERVER, dataDir: join(dir, 'data') },
      dhcp: { mode: 'authoritative', interfaces: [srvIf], subnet: '10.203.0.0/24', pool: { start: '10.203.0.100', end: '10.203.0.110' }, router: SERVER, leaseTime: 600 },
    },
    reservations: { '52:54:00:dd:01:03': '10.203.0.50' },
  });

  function udhcpc(ifname: string, name: string): Udhcpc {
    const log = join(dir, `${name}.events`);
    writeFileSync(log, '');
    const script = join(dir, `${name}.sh`);
    writeFileSync(
      script,
      `#!/bin/sh\necho "$1 $ip" >> ${log}\ncase "$1" in\n  bound|renew) ip addr replace "$ip/\${mask:-24}" dev "$interface" ;;\n  deconfig) ip addr flush dev "$interface" ;;\nesac\nexit 0\n`,
    );
    chmodSync(script, 0o755);
    const child = spawn('ip', ['netns', 'exec', cliNs, BUSYBOX, 'udhcpc', '-f', '-i', ifname, '-s', script, '-t', '10', '-T', '1', '-A', '1', '-x', `hostname:${name}`], { stdio: 'ignore' });
    const events = () => readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => l.trim());
    const c: Udhcpc = {
      child,
      events,
      async waitFor(prefix, afterIndex, ms = 20_000) {
        const end = Date.now() + ms;
        for (;;) {
          const hit = events().slice(afterIndex).find((e) => e.startsWith(prefix));
          if (hit) return hit;
          if (Date.now() > end) throw new Error(`udhcpc ${name}: no "${prefix}" event in ${ms} ms; events: ${events().join(' | ')}; server stderr: ${server?.stderr() ?? ''}`);
          await sleep(50);
        }
      },
      async stop() {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          await new Promise((r) => child.once('exit', r));
        }
      },
    };
    clients.push(c);
    return c;
  }

  const leaseFile = () => JSON.parse(readFileSync(join(dir, 'data', 'dhcp-leases.json'), 'utf8')) as { leases: Array<{ mac: string; address: string; state: string }> };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dd-udhcpc-'));
    await deleteNamespace(srvNs);
    await deleteNamespace(cliNs);
    await createNamespace(srvNs);
    await createNamespace(cliNs);
    await ipIn(srvNs, 'link', 'add', srvIf, 'type', 'bridge');
    await ipIn(srvNs, 'link', 'set', srvIf, 'up');
    await ipIn(srvNs, 'addr', 'add', `${SERVER}/24`, 'dev', srvIf);
    for (const [ifname, mac, peer] of [
      [cliIf, CLIENT_MAC, `dd-uy${tag}`],
      [cli2If, CLIENT2_MAC, `dd-uz${tag}`],
      [rawIf, '52:54:00:dd:01:04', `dd-uv${tag}`],
    ] as const) {
      await createVethPair(peer, ifname, srvNs, cliNs);
      await ipIn(cliNs, 'link', 'set', ifname, 'down');
      await ipIn(cliNs, 'link', 'set', ifname, 'address', mac);
      await ipIn(cliNs, 'link', 'set', ifname, 'up');
      await ipIn(srvNs, 'link', 'set', peer, 'master', srvIf);
    }
    server = await startDhcpServerProcess(srvNs, serverOptions());
  });

  after(async () => {
    await peer?.stop().catch(() => undefined);
    for (const c of clients) await c.stop().catch(() => undefined);
    await server?.stop().catch(() => undefined);
    await deleteNamespace(cliNs);
    await deleteNamespace(srvNs);
    rmSync(dir, { recursive: true, force: true });
  });

  test('udhcpc gets an address, renews by unicast, keeps it across a server restart, releases it', async () => {
    const c = udhcpc(cliIf, 'ddone');
    const bound = await c.waitFor('bound', 0);
    assert.equal(bound, 'bound 10.203.0.100');
    const lease = leaseFile().leases.find((l) => l.mac === CLIENT_MAC);
    assert.deepEqual({ address: lease?.address, state: lease?.state }, { address: '10.203.0.100', state: 'bound' });

    // renew (SIGUSR1): udhcpc unicasts a REQUEST from 10.203.0.100 to the server
    let mark = c.events().length;
    c.child.kill('SIGUSR1');
    assert.equal(await c.waitFor('renew', mark), 'renew 10.203.0.100');

    // restart the server: the lease comes back from disk, the next renewal is ACKed, not NAKed
    await server!.stop();
    server = await startDhcpServerProcess(srvNs, serverOptions());
    mark = c.events().length;
    c.child.kill('SIGUSR1');
    assert.equal(await c.waitFor('renew', mark), 'renew 10.203.0.100');
    assert.ok(!c.events().slice(mark).some((e) => e.startsWith('deconfig') || e.startsWith('nak')), c.events().join(' | '));

    // a second client gets a different address from the restarted server
    const c2 = udhcpc(cli2If, 'ddtwo');
    assert.equal(await c2.waitFor('bound', 0), 'bound 10.203.0.101');

    // release (SIGUSR2): the lease is marked released on disk
    c.child.kill('SIGUSR2');
    const end = Date.now() + 10_000;
    while (leaseFile().leases.find((l) => l.mac === CLIENT_MAC)?.state !== 'released' && Date.now() < end) await sleep(50);
    assert.equal(leaseFile().leases.find((l) => l.mac === CLIENT_MAC)?.state, 'released', `${c.events().join(' | ')}\n${await server!.metrics()}\n${server!.stderr()}`);
    assert.ok((await server!.metric('diskless_dhcp_replies_total{type="5"}')) >= 2, await server!.metrics());
  });
  test('malformed, foreign and non-request packets are dropped and counted; the server keeps answering', async () => {
    peer = await startRawPeer(cliNs, rawIf, EtherType.ipv4);
    const mac = Buffer.from(peer.mac, 'hex');
    const base: DhcpMessage = {
      op: BootpOp.request, htype: HardwareType.ethernet, hops: 0, xid: 0x5eed, secs: 0, flags: 0,
      ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr: mac, sname: '', file: '',
      options: new Map([[DhcpOption.messageType, uint8Value(DhcpMessageType.discover)]]),
    };
    const frame = (payload: Buffer) =>
      encodeEthernetFrame(BROADCAST_MAC, mac, EtherType.ipv4, encodeIpv4Udp({ source: '0.0.0.0', destination: '255.255.255.255', sourcePort: 68, destinationPort: 67, payload }));
    const send = (f: Buffer) => peer!.request({ op: 'send', hex: f.toString('hex') });
    const valid = encodeDhcpMessage(base);
    const badUdp = frame(valid);
    badUdp[badUdp.length - 1] = badUdp[badUdp.length - 1]! ^ 0xff;
    const badLength = Buffer.from(valid);
    badLength.set([DhcpOption.messageType, 2, 1, 1, DhcpOption.end], 240);
    for (const f of [
      frame(valid.subarray(0, 100)), // truncated
      frame(badLength), // option 53 of length 2
      badUdp, // UDP checksum
      frame(encodeDhcpMessage({ ...base, op: BootpOp.reply })),
      frame(encodeDhcpMessage({ ...base, chaddr: Buffer.alloc(8, 1) })),
      frame(encodeDhcpMessage({ ...base, options: new Map([[DhcpOption.messageType, uint8Value(DhcpMessageType.request)], [DhcpOption.serverIdentifier, ipv4Value('10.203.0.2')], [DhcpOption.requestedIpAddress, ipv4Value('10.203.0.105')]]) })),
    ]) await send(f);
    // not DHCP: the kernel-side BPF filter keeps these from ever reaching the server
    const dns = encodeIpv4Udp({ source: '0.0.0.0', destination: '255.255.255.255', sourcePort: 68, destinationPort: 53, payload: valid });
    await send(encodeEthernetFrame(BROADCAST_MAC, mac, EtherType.ipv4, dns));
    const fragment = frame(valid);
    fragment.writeUInt16BE(0x2000, 14 + 6); // more fragments (header checksum now stale too)
    await send(fragment);
    await peer.request({ op: 'clear' });
    await send(frame(valid));
    const end = Date.now() + 5000;
    let offer: DhcpMessage | undefined;
    let destinationMac = '';
    while (!offer && Date.now() < end) {
      for (const hex of (await peer.request({ op: 'received' })).frames ?? []) {
        const eth = decodeEthernetFrame(Buffer.from(hex, 'hex'));
        const ip = decodeIpv4Udp(eth.payload, { acceptPartialUdpChecksum: true });
        if (ip.destinationPort !== 68) continue;
        const m = decodeDhcpMessage(ip.payload);
        if (m.xid === 0x5eed) {
          offer = m;
          destinationMac = macToString(eth.destination);
        }
      }
      await sleep(25);
    }
    assert.ok(offer, 'the server still answers');
    assert.equal(offer.options.get(DhcpOption.messageType)?.[0], DhcpMessageType.offer);
    assert.equal(destinationMac, macToString(mac), 'RFC 2131 §4.1: broadcast bit clear, unicast to chaddr');
    const dropped = async (reason: string) => server!.metric(`diskless_dhcp_dropped_total{reason="${reason}"}`);
    assert.equal(await dropped('malformed'), 3, await server!.metrics());
    assert.equal(await dropped('bootreply'), 1);
    assert.equal(await dropped('bad-hlen'), 1);
    assert.equal(await dropped('other-server'), 1);
    assert.equal(await dropped('not-for-us'), 0, 'filtered in the kernel');
  });
});
