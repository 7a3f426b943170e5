/** DhcpEngine, rule by rule (RFC 2131 §4.1, §4.3; RFC 4578; PXE 2.1 proxyDHCP), without sockets. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BOOTP_BROADCAST_FLAG, BootpOp, DhcpMessageType, DhcpOption, DhcpPort, HardwareType, IpxeOption, PxeSuboption } from '../../wire/dhcp/dhcp-constants.js';
import type { DhcpMessage } from '../../wire/dhcp/dhcp-message.js';
import { decodeEncapsulated } from '../../wire/dhcp/dhcp-options.js';
import { ipv4Value, readIpv4Value, readUint32Value, textValue, uint16Value, uint8Value } from '../../wire/dhcp/option-values.js';
import type { BootDecision } from './boot-policy.js';
import type { RequestArrival } from './reply-destination.js';
import { DhcpEngine, type DhcpEngineConfig, type DhcpOutcome, type InspectedRequest } from './dhcp-engine.js';

const SERVER = '10.77.0.1';
const MAC = '525400123456';
const T0 = 1_700_000_000_000;

const config: DhcpEngineConfig = {
  mode: 'authoritative',
  serverAddress: SERVER,
  subnet: '10.77.0.0/24',
  poolStart: '10.77.0.100',
  poolEnd: '10.77.0.102',
  router: '10.77.0.254',
  dns: ['10.77.0.53'],
  domain: 'lab',
  leaseTimeSeconds: 3600,
  offerHoldMs: 30_000,
  declineHoldMs: 600_000,
};

const firmware: BootDecision = { bootFile: 'undionly.kpxe', nextServer: SERVER };
const ipxeScript: BootDecision = { bootFile: 'http://10.77.0.1:8080/boot/52-54-00-12-34-56.ipxe', nextServer: SERVER };

function msg(type: number, opts: Array<[number, Buffer]> = [], fields: Partial<DhcpMessage> = {}, mac = MAC): DhcpMessage {
  return {
    op: BootpOp.request,
    htype: HardwareType.ethernet,
    hops: 0,
    xid: 0xabcd,
    secs: 0,
    flags: 0,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr: Buffer.from(mac, 'hex'),
    sname: '',
    file: '',
    options: new Map([[DhcpOption.messageType, uint8Value(type)], ...opts]),
    ...fields,
  };
}

const pxeOptions: Array<[number, Buffer]> = [
  [DhcpOption.vendorClassIdentifier, textValue('PXEClient:Arch:00000:UNDI:002001')],
  [DhcpOption.clientArch, uint16Value(0)],
  [DhcpOption.clientMachineId, Buffer.concat([Buffer.from([0]), Buffer.alloc(16, 0x11)])],
  [DhcpOption.parameterRequestList, Buffer.from([1, 3, 6, 66, 67])],
];
const ipxeOptions: Array<[number, Buffer]> = [...pxeOptions, [DhcpOption.userClass, textValue('iPXE')], [DhcpOption.ipxeEncapsulated, Buffer.from([IpxeOption.featureHttp, 1, 1])]];

const port67: RequestArrival = { port: DhcpPort.server, sourceAddress: '0.0.0.0', sourcePort: DhcpPort.client };

function run(engine: DhcpEngine, m: DhcpMessage, decision: BootDecision | null = firmware, now = T0, arrival = port67): DhcpOutcome {
  const r = engine.inspect(m, arrival);
  if ('drop' in r) return { action: 'drop', reason: r.drop };
  return engine.respond(r as InspectedRequest, decision, now);
}

function reply(o: DhcpOutcome): Extract<DhcpOutcome, { action: 'reply' }> {
  assert.equal(o.action, 'reply', JSON.stringify(o));
  return o as Extract<DhcpOutcome, { action: 'reply' }>;
}

const typeOf = (o: DhcpOutcome) => reply(o).reply.options.get(DhcpOption.messageType)?.[0];
const serverId: [number, Buffer] = [DhcpOption.serverIdentifier, ipv4Value(SERVER)];
const requested = (a: string): [number, Buffer] => [DhcpOption.requestedIpAddress, ipv4Value(a)];

/** DISCOVER → OFFER → REQUEST(SELECTING) → ACK; returns the bound address. */
function bind(engine: DhcpEngine, mac = MAC, now = T0): string {
  const offer = reply(run(engine, msg(DhcpMessageType.discover, [], {}, mac), firmware, now));
  const ack = run(engine, msg(DhcpMessageType.request, [serverId, requested(offer.reply.yiaddr)], {}, mac), firmware, now);
  assert.equal(typeOf(ack), DhcpMessageType.ack);
  return offer.reply.yiaddr;
}

test('§4.3.1 DISCOVER → OFFER with an address from the pool, lease options, network options', () => {
  const o = reply(run(new DhcpEngine(config), msg(DhcpMessageType.discover)));
  assert.equal(o.reply.op, BootpOp.reply);
  assert.equal(o.reply.xid, 0xabcd);
  assert.equal(o.reply.yiaddr, '10.77.0.100');
  const opts = o.reply.options;
  assert.equal(opts.get(DhcpOption.messageType)?.[0], DhcpMessageType.offer);
  assert.equal(readIpv4Value(opts.get(DhcpOption.serverIdentifier)!, 54), SERVER);
  assert.equal(readUint32Value(opts.get(DhcpOption.leaseTime)!, 51), 3600);
  assert.equal(readUint32Value(opts.get(DhcpOption.renewalTime)!, 58), 1800);
  assert.equal(readUint32Value(opts.get(DhcpOption.rebindingTime)!, 59), 3150);
  assert.equal(readIpv4Value(opts.get(DhcpOption.subnetMask)!, 1), '255.255.255.0');
  assert.equal(readIpv4Value(opts.get(DhcpOption.router)!, 3), '10.77.0.254');
  assert.equal(opts.get(DhcpOption.domainName)?.toString(), 'lab');
  assert.equal(o.persist, false, 'an offer is not persisted');
});

test('§4.1 addressing: unicast to chaddr/yiaddr when the broadcast bit is clear, broadcast when set, relay via giaddr, NAK broadcast', () => {
  const e = new DhcpEngine(config);
  const uni = reply(run(e, msg(DhcpMessageType.discover)));
  assert.deepEqual(uni.destination, { via: 'raw', address: '10.77.0.100', port: 68, mac: '52:54:00:12:34:56' });
  const bc = reply(run(e, msg(DhcpMessageType.discover, [], { flags: BOOTP_BROADCAST_FLAG })));
  assert.deepEqual(bc.destination, { via: 'raw', address: '255.255.255.255', port: 68, mac: 'ff:ff:ff:ff:ff:ff' });
  assert.equal(bc.reply.flags, BOOTP_BROADCAST_FLAG);
  const relayed = reply(run(e, msg(DhcpMessageType.discover, [], { giaddr: '10.77.0.254', hops: 1 })));
  assert.deepEqual(relayed.destination, { via: 'udp', address: '10.77.0.254', port: 67 });
  assert.equal(relayed.reply.giaddr, '10.77.0.254');
  const nak = reply(run(e, msg(DhcpMessageType.request, [requested('192.168.1.5')])));
  assert.equal(typeOf(nak), DhcpMessageType.nak);
  assert.equal(nak.destination.address, '255.255.255.255');
  const relayedNak = reply(run(e, msg(DhcpMessageType.request, [requested('192.168.1.5')], { giaddr: '10.77.0.254' })));
  assert.ok(relayedNak.reply.flags & BOOTP_BROADCAST_FLAG, '§4.3.2: broadcast bit set in a relayed NAK');
});

test('§4.3.2 SELECTING: REQUEST for the offered address → ACK, persisted; for another address → NAK', () => {
  const e = new DhcpEngine(config);
  const offer = reply(run(e, msg(DhcpMessageType.discover)));
  const bad = run(e, msg(DhcpMessageType.request, [serverId, requested('10.77.0.101')]));
  assert.equal(typeOf(bad), DhcpMessageType.nak);
  const ack = reply(run(e, msg(DhcpMessageType.request, [serverId, requested(offer.reply.yiaddr)])));
  assert.equal(typeOf(ack), DhcpMessageType.ack);
  assert.equal(ack.reply.yiaddr, '10.77.0.100');
  assert.equal(ack.persist, true);
  assert.equal(e.table.leaseOf('01' + MAC)?.state, 'bound');
});

test('§4.3.2 SELECTING another server: dropped as other-server and our offer withdrawn', () => {
  const e = new DhcpEngine(config);
  run(e, msg(DhcpMessageType.discover));
  const o = run(e, msg(DhcpMessageType.request, [[DhcpOption.serverIdentifier, ipv4Value('10.77.0.2')], requested('10.77.0.100')]));
  assert.deepEqual(o, { action: 'drop', reason: 'other-server' });
  assert.equal(e.table.leaseOf('01' + MAC), undefined);
  // the address goes to the next client
  assert.equal(reply(run(e, msg(DhcpMessageType.discover, [], {}, '525400000002'))).reply.yiaddr, '10.77.0.100');
});

test('concurrent DISCOVERs get different addresses while offers are held; an expired offer is reusable', () => {
  const e = new DhcpEngine(config);
  const a = reply(run(e, msg(DhcpMessageType.discover, [], {}, '525400000001'))).reply.yiaddr;
  const b = reply(run(e, msg(DhcpMessageType.discover, [], {}, '525400000002'))).reply.yiaddr;
  assert.notEqual(a, b);
  const c = reply(run(e, msg(DhcpMessageType.discover, [], {}, '525400000003'))).reply.yiaddr;
  assert.equal(new Set([a, b, c]).size, 3);
  assert.deepEqual(run(e, msg(DhcpMessageType.discover, [], {}, '525400000004')), { action: 'drop', reason: 'pool-exhausted' });
  const d = reply(run(e, msg(DhcpMessageType.discover, [], {}, '525400000004'), firmware, T0 + config.offerHoldMs + 1)).reply.yiaddr;
  assert.equal(d, '10.77.0.100', 'offers expired: the oldest goes first');
});

test('§4.3.2 INIT-REBOOT: own address → ACK; someone else\'s → NAK; wrong network → NAK', () => {
  const e = new DhcpEngine(config);
  const mine = bind(e);
  assert.equal(typeOf(run(e, msg(DhcpMessageType.request, [requested(mine)]), firmware, T0 + 1000)), DhcpMessageType.ack);
  const other = bind(e, '525400000002');
  assert.equal(typeOf(run(e, msg(DhcpMessageType.request, [requested(other)]), firmware, T0 + 2000)), DhcpMessageType.nak);
  assert.equal(typeOf(run(e, msg(DhcpMessageType.request, [requested('10.1.2.3')]))), DhcpMessageType.nak);
});

test('§4.3.2 RENEWING (unicast, ciaddr) → ACK unicast to ciaddr extending the lease; REBINDING likewise', () => {
  const e = new DhcpEngine(config);
  const a = bind(e);
  const renew = reply(run(e, msg(DhcpMessageType.request, [], { ciaddr: a }), firmware, T0 + 1_800_000, { port: 67, sourceAddress: a, sourcePort: 68 }));
  assert.equal(typeOf(renew), DhcpMessageType.ack);
  assert.equal(renew.reply.ciaddr, a);
  assert.equal(renew.reply.yiaddr, a);
  assert.deepEqual(renew.destination, { via: 'raw', address: a, port: 68, mac: '52:54:00:12:34:56' });
  assert.equal(e.table.leaseOf('01' + MAC)?.expiresAt, T0 + 1_800_000 + 3_600_000);
  const rebind = reply(run(e, msg(DhcpMessageType.request, [], { ciaddr: a, flags: BOOTP_BROADCAST_FLAG }), firmware, T0 + 3_200_000));
  assert.equal(typeOf(rebind), DhcpMessageType.ack);
});

test('REQUEST with neither option 50 nor ciaddr is dropped as bad-request', () => {
  assert.deepEqual(run(new DhcpEngine(config), msg(DhcpMessageType.request)), { action: 'drop', reason: 'bad-request', detail: 'REQUEST without requested address or ciaddr' });
});

test('§4.3.3 DECLINE keeps the address out of the pool for a while, then it returns', () => {
  const e = new DhcpEngine(config);
  const a = bind(e);
  const d = run(e, msg(DhcpMessageType.decline, [serverId, requested(a)]), null, T0 + 10);
  assert.deepEqual(d, { action: 'none', persist: true, event: 'decline' });
  const next = reply(run(e, msg(DhcpMessageType.discover), firmware, T0 + 20)).reply.yiaddr;
  assert.notEqual(next, a);
  assert.equal(e.table.isDeclined(a, T0 + 20), true);
  assert.equal(e.table.isDeclined(a, T0 + 10 + config.declineHoldMs + 1), false);
});

test('§4.3.4 RELEASE frees the address; the same client gets it back; others take fresh ones first', () => {
  const e = new DhcpEngine(config);
  const a = bind(e);
  assert.deepEqual(run(e, msg(DhcpMessageType.release, [serverId], { ciaddr: a }), null, T0 + 5), { action: 'none', persist: true, event: 'release' });
  assert.equal(e.table.leaseOf('01' + MAC)?.state, 'released');
  assert.equal(reply(run(e, msg(DhcpMessageType.discover, [], {}, '525400000002'), firmware, T0 + 6)).reply.yiaddr, '10.77.0.101', 'released addresses are reused last');
  assert.equal(reply(run(e, msg(DhcpMessageType.discover), firmware, T0 + 7)).reply.yiaddr, a, 'affinity');
  assert.deepEqual(run(e, msg(DhcpMessageType.release, [serverId], { ciaddr: '10.77.0.102' }), null, T0 + 8), { action: 'drop', reason: 'unknown-lease' });
});

test('expired leases are reused last, oldest first; a full pool drops as pool-exhausted', () => {
  const e = new DhcpEngine(config);
  bind(e, '525400000001', T0);
  bind(e, '525400000002', T0 + 1000);
  bind(e, '525400000003', T0 + 2000);
  assert.deepEqual(run(e, msg(DhcpMessageType.discover, [], {}, '525400000004'), firmware, T0 + 3000), { action: 'drop', reason: 'pool-exhausted' });
  const later = T0 + 3_600_000 + 5000; // all three expired
  assert.equal(reply(run(e, msg(DhcpMessageType.discover, [], {}, '525400000004'), firmware, later)).reply.yiaddr, '10.77.0.100');
});

test('§4.3.5 INFORM → ACK without yiaddr or lease time, unicast to ciaddr', () => {
  const o = reply(run(new DhcpEngine(config), msg(DhcpMessageType.inform, [], { ciaddr: '10.77.0.50' })));
  assert.equal(typeOf(o), DhcpMessageType.ack);
  assert.equal(o.reply.yiaddr, '0.0.0.0');
  assert.equal(o.reply.options.has(DhcpOption.leaseTime), false);
  assert.equal(o.destination.address, '10.77.0.50');
});

test('reservations: the policy\'s address is offered and ACKed; the pool skips other reservations; the wrong address is NAKed', () => {
  const e = new DhcpEngine({ ...config, reservedAddresses: ['10.77.0.100'] });
  const reserved: BootDecision = { ...firmware, address: '10.77.0.20' };
  const offer = reply(run(e, msg(DhcpMessageType.discover), reserved));
  assert.equal(offer.reply.yiaddr, '10.77.0.20');
  assert.equal(typeOf(run(e, msg(DhcpMessageType.request, [serverId, requested('10.77.0.20')]), reserved)), DhcpMessageType.ack);
  assert.equal(typeOf(run(e, msg(DhcpMessageType.request, [requested('10.77.0.101')]), reserved)), DhcpMessageType.nak);
  assert.equal(reply(run(e, msg(DhcpMessageType.discover, [], {}, '525400000009'))).reply.yiaddr, '10.77.0.101', '.100 is reserved for another machine');
});

test('PXE firmware: boot file in `file`, siaddr, options 66/67 when asked, option 97 echoed, no 175', () => {
  const o = reply(run(new DhcpEngine(config), msg(DhcpMessageType.discover, pxeOptions)));
  assert.equal(o.reply.file, 'undionly.kpxe');
  assert.equal(o.reply.siaddr, SERVER);
  assert.equal(o.reply.options.get(DhcpOption.bootfileName)?.toString(), 'undionly.kpxe');
  assert.equal(o.reply.options.get(DhcpOption.tftpServerName)?.toString(), SERVER);
  assert.deepEqual(o.reply.options.get(DhcpOption.clientMachineId), pxeOptions[2]![1]);
  assert.equal(o.reply.options.has(DhcpOption.ipxeEncapsulated), false);
  assert.equal(o.reply.options.has(DhcpOption.vendorClassIdentifier), false, 'authoritative replies are plain DHCP offers');
});

test('iPXE (authoritative): script URL as boot file and 175.176 no-pxedhcp = 1', () => {
  const o = reply(run(new DhcpEngine(config), msg(DhcpMessageType.discover, ipxeOptions), ipxeScript));
  assert.equal(o.reply.options.get(DhcpOption.bootfileName)?.toString(), ipxeScript.bootFile);
  assert.equal(o.reply.file, ipxeScript.bootFile);
  const encap = decodeEncapsulated(o.reply.options.get(DhcpOption.ipxeEncapsulated)!, 'option 175');
  assert.deepEqual([...encap.get(IpxeOption.noPxeDhcp)!], [1]);
});

test('a boot file longer than the 128-byte field goes in option 67 only', () => {
  const long: BootDecision = { bootFile: 'http://10.77.0.1:8080/' + 'x'.repeat(200), nextServer: SERVER };
  const o = reply(run(new DhcpEngine(config), msg(DhcpMessageType.discover, ipxeOptions), long));
  assert.equal(o.reply.file, '');
  assert.equal(o.reply.options.get(DhcpOption.bootfileName)?.toString(), long.bootFile);
});

test('policy null: silent (policy-ignored); RELEASE and DECLINE need no policy', () => {
  assert.deepEqual(run(new DhcpEngine(config), msg(DhcpMessageType.discover), null), { action: 'drop', reason: 'policy-ignored' });
});

test('malformed headers are dropped: BOOTREPLY, wrong htype, wrong hlen, no or unknown message type', () => {
  const e = new DhcpEngine(config);
  assert.deepEqual(run(e, msg(DhcpMessageType.discover, [], { op: BootpOp.reply })), { action: 'drop', reason: 'bootreply' });
  assert.deepEqual(run(e, msg(DhcpMessageType.discover, [], { htype: 6 })), { action: 'drop', reason: 'bad-htype' });
  assert.deepEqual(run(e, msg(DhcpMessageType.discover, [], { chaddr: Buffer.alloc(8) })), { action: 'drop', reason: 'bad-hlen' });
  const none = msg(DhcpMessageType.discover);
  none.options.delete(DhcpOption.messageType);
  assert.deepEqual(run(e, none), { action: 'drop', reason: 'no-message-type' });
  assert.deepEqual(run(e, msg(DhcpMessageType.offer)), { action: 'drop', reason: 'unsupported-message-type' });
  assert.deepEqual(run(e, msg(13)), { action: 'drop', reason: 'unsupported-message-type' });
});

test('proxyDHCP: answers only PXE clients; OFFER without yiaddr carrying 60 PXEClient, 54, 43 discovery control, boot file; broadcast', () => {
  const e = new DhcpEngine({ ...config, mode: 'proxy' });
  assert.deepEqual(run(e, msg(DhcpMessageType.discover)), { action: 'drop', reason: 'not-pxe-client' });
  const o = reply(run(e, msg(DhcpMessageType.discover, pxeOptions)));
  assert.equal(typeOf(o), DhcpMessageType.offer);
  assert.equal(o.reply.yiaddr, '0.0.0.0');
  assert.equal(o.reply.options.get(DhcpOption.vendorClassIdentifier)?.toString(), 'PXEClient');
  assert.equal(readIpv4Value(o.reply.options.get(DhcpOption.serverIdentifier)!, 54), SERVER);
  const pxe = decodeEncapsulated(o.reply.options.get(DhcpOption.vendorSpecific)!, 'option 43');
  assert.deepEqual([...pxe.get(PxeSuboption.discoveryControl)!], [8]);
  assert.equal(o.reply.file, 'undionly.kpxe');
  assert.equal(o.reply.options.has(DhcpOption.leaseTime), false);
  assert.equal(o.destination.address, '255.255.255.255');
  assert.equal(e.table.leaseOf('01' + MAC), undefined, 'proxy mode holds no leases');
});

test('proxyDHCP: the REQUEST to the address server is not ours; the port-4011 REQUEST gets an ACK to its source', () => {
  const e = new DhcpEngine({ ...config, mode: 'proxy' });
  const toOther = msg(DhcpMessageType.request, [...pxeOptions, [DhcpOption.serverIdentifier, ipv4Value('10.77.0.2')], requested('10.77.0.140')]);
  assert.deepEqual(run(e, toOther), { action: 'drop', reason: 'other-server' });
  const at4011 = msg(DhcpMessageType.request, [...ipxeOptions, serverId], { ciaddr: '10.77.0.140' });
  const o = reply(run(e, at4011, ipxeScript, T0, { port: DhcpPort.pxe, sourceAddress: '10.77.0.140', sourcePort: 68 }));
  assert.equal(typeOf(o), DhcpMessageType.ack);
  assert.deepEqual(o.destination, { via: 'udp', address: '10.77.0.140', port: 68 });
  assert.equal(o.reply.options.get(DhcpOption.bootfileName)?.toString(), ipxeScript.bootFile);
  assert.equal(o.reply.options.has(DhcpOption.ipxeEncapsulated), false, 'no no-pxedhcp in proxy mode: iPXE must wait for us');
  assert.deepEqual(run(e, msg(DhcpMessageType.inform, pxeOptions, { ciaddr: '10.77.0.140' })), { action: 'drop', reason: 'proxy-mode' });
});

test('BootClient: arch, iPXE detection, vendor and user class, interface', () => {
  const e = new DhcpEngine(config);
  const r = e.inspect(msg(DhcpMessageType.discover, ipxeOptions), port67) as InspectedRequest;
  assert.deepEqual(e.bootClient(r, 'br0'), { mac: '52:54:00:12:34:56', arch: 0, isIpxe: true, vendorClass: 'PXEClient:Arch:00000:UNDI:002001', userClass: 'iPXE', ifname: 'br0' });
  const plain = e.inspect(msg(DhcpMessageType.discover), port67) as InspectedRequest;
  assert.deepEqual(e.bootClient(plain, 'br0'), { mac: '52:54:00:12:34:56', arch: undefined, isIpxe: false, vendorClass: undefined, userClass: undefined, ifname: 'br0' });
});
