import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IscsiOpcode, LoginStatus } from '../../wire/iscsi/iscsi-constants.js';
import type { LoginRequest } from '../../wire/iscsi/iscsi-pdu.js';
import { decodeTextKeys, encodeTextKeys, pairs } from '../../wire/iscsi/text-keys.js';
import type { BlockDevice } from '../../store/block-device.js';
import { chapResponse, decodeBinaryValue, encodeBinaryValue } from './chap.js';
import { LoginNegotiator, type LoginStep } from './login-negotiator.js';
import { DEFAULT_TARGET_LIMITS, parseNumber } from './operational-keys.js';
import { StaticTargetResolver } from './static-target-resolver.js';

const IQN = 'iqn.2026-11.io.diskless:v1';
const CHAP_IQN = 'iqn.2026-11.io.diskless:chap';
// The negotiator never touches the device: it only hands the binding on.
const device = { size: 512, blockSize: 512 } as unknown as BlockDevice;
const resolver = new StaticTargetResolver([
  { name: IQN, device, readOnly: false },
  { name: CHAP_IQN, device, readOnly: false, chap: { username: 'node1', secret: 'secretsecret1' } },
]);

function negotiator(extra: Partial<ConstructorParameters<typeof LoginNegotiator>[0]> = {}): LoginNegotiator {
  let tsih = 0x100;
  return new LoginNegotiator({
    resolver,
    limits: DEFAULT_TARGET_LIMITS,
    initiatorAddress: '127.0.0.1',
    portalGroupTag: 1,
    randomBytes: (n) => Buffer.alloc(n, 0x5a),
    allocateTsih: () => tsih++,
    commandWindow: 64,
    ...extra,
  });
}

function login(csg: number, nsg: number, transit: boolean, kv: Array<[string, string]>, over: Partial<LoginRequest> = {}): LoginRequest {
  return { opcode: IscsiOpcode.loginRequest, transit, continue: false, csg, nsg, versionMax: 0, versionMin: 0, isid: 0x400001370000, tsih: 0, itt: 7, cid: 0, cmdSN: 100, expStatSN: 5, data: encodeTextKeys(pairs(...kv)), ...over };
}

const keys = (s: LoginStep) => Object.fromEntries(decodeTextKeys(s.response.data).map((p) => [p.key, p.value]));
const status = (s: LoginStep) => (s.response.statusClass << 8) | s.response.statusDetail;

test("iPXE's login (captured): security None, then operational, then full feature", async () => {
  const n = negotiator();
  const s1 = await n.handle(login(0, 1, true, [['InitiatorName', 'iqn.2010-04.org.ipxe:x'], ['TargetName', IQN], ['SessionType', 'Normal'], ['AuthMethod', 'None']]));
  assert.equal(s1.kind, 'continue');
  assert.deepEqual(keys(s1), { TargetPortalGroupTag: '1', AuthMethod: 'None' });
  assert.deepEqual([s1.response.transit, s1.response.csg, s1.response.nsg, s1.response.statSN, s1.response.itt, s1.response.isid], [true, 0, 1, 5, 7, 0x400001370000]);
  const s2 = await n.handle(
    login(1, 3, true, [
      ['HeaderDigest', 'None'], ['DataDigest', 'None'], ['MaxConnections', '1'], ['InitialR2T', 'Yes'], ['ImmediateData', 'No'], ['MaxRecvDataSegmentLength', '8192'],
      ['MaxBurstLength', '262144'], ['FirstBurstLength', '65536'], ['DefaultTime2Wait', '0'], ['DefaultTime2Retain', '0'], ['MaxOutstandingR2T', '1'],
      ['DataPDUInOrder', 'Yes'], ['DataSequenceInOrder', 'Yes'], ['ErrorRecoveryLevel', '0'],
    ]),
  );
  assert.equal(s2.kind, 'complete');
  assert.deepEqual(keys(s2), {
    HeaderDigest: 'None', DataDigest: 'None', MaxConnections: '1', InitialR2T: 'Yes', ImmediateData: 'No', MaxBurstLength: '262144', FirstBurstLength: '65536',
    DefaultTime2Wait: '2', DefaultTime2Retain: '0', MaxOutstandingR2T: '1', DataPDUInOrder: 'Yes', DataSequenceInOrder: 'Yes', ErrorRecoveryLevel: '0', MaxRecvDataSegmentLength: '262144',
  });
  assert.equal(s2.response.tsih, 0x100);
  assert.equal(s2.response.statSN, 6);
  assert.equal(s2.response.maxCmdSN, 163);
  if (s2.kind !== 'complete') return;
  assert.equal(s2.session.type, 'normal');
  assert.equal(s2.session.nextStatSN, 7);
  assert.equal(s2.session.expCmdSN, 100);
  assert.equal(s2.session.parameters.initiatorMaxRecvDataSegmentLength, 8192);
  assert.equal(s2.session.parameters.immediateData, false);
  assert.equal(s2.session.parameters.initialR2T, true);
});

test("libiscsi's login (captured): straight to operational, CRC32C offered, markers, unknown keys", async () => {
  const s = await negotiator().handle(
    login(1, 3, true, [['InitiatorName', 'iqn.x:y'], ['TargetName', IQN], ['SessionType', 'Normal'], ['HeaderDigest', 'CRC32C,None'], ['InitialR2T', 'No'], ['ImmediateData', 'Yes'], ['FirstBurstLength', '262144'], ['MaxBurstLength', '16776192'], ['IFMarker', 'No'], ['OFMarkInt', '2048'], ['X-com.example.Foo', '1'], ['MaxRecvDataSegmentLength', '262144']]),
  );
  assert.equal(s.kind, 'complete');
  assert.deepEqual(keys(s), { TargetPortalGroupTag: '1', HeaderDigest: 'CRC32C', InitialR2T: 'No', ImmediateData: 'Yes', FirstBurstLength: '262144', MaxBurstLength: '1048576', IFMarker: 'No', OFMarkInt: 'Irrelevant', 'X-com.example.Foo': 'NotUnderstood', MaxRecvDataSegmentLength: '262144' });
  if (s.kind === 'complete') assert.deepEqual([s.session.parameters.firstBurstLength, s.session.parameters.maxBurstLength, s.session.parameters.initialR2T], [262144, 1048576, false]);
});

test('bad operational values are answered Reject; FirstBurstLength never exceeds MaxBurstLength', async () => {
  const s = await negotiator().handle(login(1, 3, true, [['InitiatorName', 'i'], ['TargetName', IQN], ['MaxBurstLength', '4096'], ['FirstBurstLength', '65536'], ['ImmediateData', 'maybe'], ['MaxConnections', '0'], ['HeaderDigest', 'MD5,SHA1'], ['ErrorRecoveryLevel', '2']]));
  assert.equal(s.kind, 'complete');
  assert.deepEqual(keys(s), { TargetPortalGroupTag: '1', MaxBurstLength: '4096', FirstBurstLength: '65536', ImmediateData: 'Reject', MaxConnections: 'Reject', HeaderDigest: 'Reject', ErrorRecoveryLevel: '0', MaxRecvDataSegmentLength: '262144' });
  if (s.kind === 'complete') assert.equal(s.session.parameters.firstBurstLength, 4096);
  assert.deepEqual([parseNumber('0x10'), parseNumber('12'), parseNumber('1e3'), parseNumber('')], [16, 12, null, null]);
});

async function chapLogin(secret: string, username = 'node1'): Promise<LoginStep[]> {
  const n = negotiator();
  const steps: LoginStep[] = [];
  steps.push(await n.handle(login(0, 1, true, [['InitiatorName', 'i'], ['TargetName', CHAP_IQN], ['AuthMethod', 'CHAP,None']])));
  steps.push(await n.handle(login(0, 1, false, [['CHAP_A', '5']])));
  const k = keys(steps[1]!);
  const r = chapResponse(Number(k.CHAP_I), secret, decodeBinaryValue(k.CHAP_C!)!);
  steps.push(await n.handle(login(0, 1, true, [['CHAP_N', username], ['CHAP_R', encodeBinaryValue(r)]])));
  if (steps[2]!.kind === 'continue') steps.push(await n.handle(login(1, 3, true, [['HeaderDigest', 'None']])));
  return steps;
}

test('CHAP (RFC 7143 §12.1.3): challenge of 32 random bytes, right secret logs in', async () => {
  const [s1, s2, s3, s4] = await chapLogin('secretsecret1');
  assert.deepEqual(keys(s1!), { TargetPortalGroupTag: '1', AuthMethod: 'CHAP' });
  assert.equal(s1!.response.transit, false, 'not ready to leave the security stage yet');
  assert.deepEqual(keys(s2!), { CHAP_A: '5', CHAP_I: '90', CHAP_C: `0x${'5a'.repeat(32)}` });
  assert.equal(s3!.kind, 'continue');
  assert.deepEqual([s3!.response.transit, s3!.response.nsg], [true, 1]);
  assert.equal(s4!.kind, 'complete');
});

test('CHAP: wrong secret or wrong name → 0x0201; target requiring CHAP refuses AuthMethod=None and a skipped security stage', async () => {
  const wrong = await chapLogin('secretsecret2');
  assert.equal(wrong[2]!.kind, 'fail');
  assert.equal(status(wrong[2]!), LoginStatus.authenticationFailure);
  const name = await chapLogin('secretsecret1', 'node2');
  assert.equal(status(name[2]!), LoginStatus.authenticationFailure);
  const none = await negotiator().handle(login(0, 1, true, [['InitiatorName', 'i'], ['TargetName', CHAP_IQN], ['AuthMethod', 'None']]));
  assert.equal(status(none), LoginStatus.authenticationFailure);
  const skip = await negotiator().handle(login(1, 3, true, [['InitiatorName', 'i'], ['TargetName', CHAP_IQN]]));
  assert.equal(status(skip), LoginStatus.authenticationFailure);
  const n = negotiator();
  await n.handle(login(0, 1, true, [['InitiatorName', 'i'], ['TargetName', CHAP_IQN], ['AuthMethod', 'CHAP']]));
  assert.equal(status(await n.handle(login(0, 1, false, [['CHAP_A', '7']]))), LoginStatus.authenticationFailure, 'no MD5');
});

test('login failures: not found 0x0203, missing names 0x0207, session type, version, TSIH, changed ISID, reserved transitions', async () => {
  const fail = async (reqs: LoginRequest[]) => {
    const n = negotiator();
    let last: LoginStep | undefined;
    for (const r of reqs) last = await n.handle(r);
    assert.equal(last!.kind, 'fail');
    return status(last!);
  };
  assert.equal(await fail([login(0, 1, true, [['InitiatorName', 'i'], ['TargetName', 'iqn.nope:x']])]), LoginStatus.notFound);
  assert.equal(await fail([login(0, 1, true, [['TargetName', IQN]])]), LoginStatus.missingParameter);
  assert.equal(await fail([login(0, 1, true, [['InitiatorName', 'i']])]), LoginStatus.missingParameter);
  assert.equal(await fail([login(0, 1, true, [['InitiatorName', 'i'], ['SessionType', 'Boot']])]), LoginStatus.sessionTypeNotSupported);
  assert.equal(await fail([login(0, 1, true, [['InitiatorName', 'i'], ['TargetName', IQN]], { versionMin: 2 })]), LoginStatus.unsupportedVersion);
  assert.equal(await fail([login(0, 1, true, [['InitiatorName', 'i'], ['TargetName', IQN]], { tsih: 5 })]), LoginStatus.sessionDoesNotExist);
  assert.equal(await fail([login(0, 1, true, [['InitiatorName', 'i'], ['TargetName', IQN], ['AuthMethod', 'None']]), login(1, 3, true, [], { isid: 1 })]), LoginStatus.initiatorError);
  assert.equal(await fail([login(1, 0, true, [['InitiatorName', 'i'], ['TargetName', IQN]])]), LoginStatus.initiatorError);
  assert.equal(await fail([login(0, 1, true, [['InitiatorName', 'i'], ['TargetName', IQN], ['AuthMethod', 'None']]), login(0, 3, true, [])]), LoginStatus.initiatorError, 'CSG must follow the stage');
  assert.equal(await fail([login(0, 1, true, [['InitiatorName', 'i'], ['TargetName', IQN], ['AuthMethod', 'None']]), login(1, 3, true, [['TargetName', 'iqn.other:x']])]), LoginStatus.initiatorError, 'leading key changed');
  const repeat = negotiator();
  await repeat.handle(login(0, 1, true, [['InitiatorName', 'i'], ['SessionType', 'Discovery'], ['AuthMethod', 'CHAP,None']]));
  assert.equal((await repeat.handle(login(1, 3, true, [['InitiatorName', 'i'], ['SessionType', 'Discovery']]))).kind, 'complete', 'libiscsi repeats leading keys');
  const boom = negotiator({ resolver: { listTargets: async () => [], resolve: async () => Promise.reject(new Error('db down')) } });
  assert.equal(status(await boom.handle(login(0, 1, true, [['InitiatorName', 'i'], ['TargetName', IQN]]))), LoginStatus.targetError);
  const text = negotiator();
  assert.equal(status(await text.handle({ ...login(0, 1, true, []), data: Buffer.from('garbage') })), LoginStatus.initiatorError);
});

test('discovery session: no target needed, session keys Irrelevant, text split over Continue PDUs', async () => {
  const n = negotiator();
  const all = encodeTextKeys(pairs(['InitiatorName', 'iqn.2026-11.io.diskless:init-ls'], ['SessionType', 'Discovery'], ['MaxBurstLength', '262144'], ['MaxRecvDataSegmentLength', '65536']));
  const part1 = await n.handle({ ...login(1, 3, false, []), continue: true, data: all.subarray(0, 20) });
  assert.equal(part1.kind, 'continue');
  assert.equal(part1.response.data.length, 0);
  const done = await n.handle({ ...login(1, 3, true, []), data: all.subarray(20) });
  assert.equal(done.kind, 'complete');
  assert.deepEqual(keys(done), { TargetPortalGroupTag: '1', MaxBurstLength: 'Irrelevant', MaxRecvDataSegmentLength: '262144' });
  if (done.kind === 'complete') {
    assert.equal(done.session.type, 'discovery');
    assert.equal(done.session.parameters.initiatorMaxRecvDataSegmentLength, 65536);
  }
});

/** One operational login with `kv` after the leading keys; the answer keys and the session. */
async function operational(kv: Array<[string, string]>, extra: Parameters<typeof negotiator>[0] = {}) {
  const s = await negotiator(extra).handle(login(1, 3, true, [['InitiatorName', 'i'], ['TargetName', IQN], ...kv]));
  return { step: s, k: keys(s), p: s.kind === 'complete' ? s.session.parameters : undefined };
}

test('every operational key by its rule (RFC 7143 §13): list, OR, AND, min, max, declarative', async () => {
  const cases: Array<[string, string, string | undefined, (p: import('./operational-keys.js').SessionParameters) => unknown, unknown]> = [
    ['HeaderDigest', 'CRC32C,None', 'CRC32C', (p) => p.headerDigest, true],
    ['HeaderDigest', 'None,CRC32C', 'None', (p) => p.headerDigest, false],
    ['DataDigest', 'CRC32C', 'CRC32C', (p) => p.dataDigest, true],
    ['DataDigest', 'Foo,None', 'None', (p) => p.dataDigest, false],
    ['InitialR2T', 'No', 'No', (p) => p.initialR2T, false], // OR with our No
    ['InitialR2T', 'Yes', 'Yes', (p) => p.initialR2T, true],
    ['ImmediateData', 'Yes', 'Yes', (p) => p.immediateData, true], // AND with our Yes
    ['ImmediateData', 'No', 'No', (p) => p.immediateData, false],
    ['DataPDUInOrder', 'No', 'Yes', (p) => p.dataPduInOrder, true], // OR with our Yes
    ['DataSequenceInOrder', 'No', 'Yes', (p) => p.dataSequenceInOrder, true],
    ['MaxConnections', '8', '1', (p) => p.maxConnections, 1], // min
    ['MaxBurstLength', '16776192', '1048576', (p) => p.maxBurstLength, 1048576], // min with our limit
    ['MaxBurstLength', '4096', '4096', (p) => p.maxBurstLength, 4096],
    ['FirstBurstLength', '512', '512', (p) => p.firstBurstLength, 512],
    ['FirstBurstLength', '0x1000000', 'Reject', (p) => p.firstBurstLength, 65536], // 2^24 is above the range
    ['MaxOutstandingR2T', '16', String(DEFAULT_TARGET_LIMITS.maxOutstandingR2T), (p) => p.maxOutstandingR2T, DEFAULT_TARGET_LIMITS.maxOutstandingR2T],
    ['MaxOutstandingR2T', '0', 'Reject', (p) => p.maxOutstandingR2T, 1],
    ['DefaultTime2Wait', '0', '2', (p) => p.defaultTime2Wait, 2], // max
    ['DefaultTime2Wait', '3601', 'Reject', (p) => p.defaultTime2Wait, 2],
    ['DefaultTime2Retain', '20', '0', (p) => p.defaultTime2Retain, 0], // min with our 0 (ERL 0)
    ['ErrorRecoveryLevel', '2', '0', (p) => p.errorRecoveryLevel, 0], // min
    ['ErrorRecoveryLevel', 'two', 'Reject', (p) => p.errorRecoveryLevel, 0],
    ['MaxRecvDataSegmentLength', '16384', '262144', (p) => p.initiatorMaxRecvDataSegmentLength, 16384], // declared each way: ours is not an answer
    ['InitialR2T', 'yes', 'Reject', (p) => p.initialR2T, true], // booleans are case-sensitive
    ['X-org.example.Thing', 'On', 'NotUnderstood', (p) => p.initialR2T, true],
    ['TargetAlias', 'me', 'Reject', (p) => p.initialR2T, true], // a target-only key
  ];
  for (const [key, value, answer, field, want] of cases) {
    const { k, p } = await operational([[key, value]]);
    assert.equal(k[key], answer, `${key}=${value} answered`);
    assert.ok(p, `${key}=${value} completes`);
    assert.deepEqual(field(p), want, `${key}=${value} result`);
  }
  const none = await operational([['HeaderDigest', 'CRC32C']], { limits: { ...DEFAULT_TARGET_LIMITS, digests: ['None'] } });
  assert.equal(none.k.HeaderDigest, 'Reject', 'a target without CRC32C rejects a CRC32C-only offer');
  const badDeclaration = await operational([['MaxRecvDataSegmentLength', '511']]);
  assert.equal(status(badDeclaration.step), LoginStatus.initiatorError, 'a declaration out of range fails the login');
  const clamp = await operational([['MaxBurstLength', '8192'], ['FirstBurstLength', '65536']]);
  assert.equal(clamp.p!.firstBurstLength, 8192, 'FirstBurstLength never exceeds MaxBurstLength');
});

test('a key offered twice (same PDU or a later stage) fails the login with 0x0200', async () => {
  const same = await negotiator().handle(login(1, 3, true, [['InitiatorName', 'i'], ['TargetName', IQN], ['MaxBurstLength', '4096'], ['MaxBurstLength', '8192']]));
  assert.equal(status(same), LoginStatus.initiatorError);
  const n = negotiator();
  await n.handle(login(0, 1, true, [['InitiatorName', 'i'], ['TargetName', IQN], ['AuthMethod', 'None'], ['InitialR2T', 'No']]));
  assert.equal(status(await n.handle(login(1, 3, true, [['InitialR2T', 'Yes']]))), LoginStatus.initiatorError);
});

test('initiator allow list: a name not listed gets 0x0202, a listed one logs in', async () => {
  const acl = new StaticTargetResolver([{ name: IQN, device, readOnly: false, allowedInitiators: ['iqn.2026-11.io.diskless:ok'] }]);
  const bad = await negotiator({ resolver: acl }).handle(login(0, 1, true, [['InitiatorName', 'iqn.2026-11.io.diskless:other'], ['TargetName', IQN], ['AuthMethod', 'None']]));
  assert.equal(status(bad), LoginStatus.authorizationFailure);
  const good = await negotiator({ resolver: acl }).handle(login(1, 3, true, [['InitiatorName', 'iqn.2026-11.io.diskless:ok'], ['TargetName', IQN]]));
  assert.equal(good.kind, 'complete');
});

test('TSIH ≠ 0: a live session → 0x0206 (one connection per session), an unknown one → 0x020a', async () => {
  const live = negotiator({ tsihLive: (t) => t === 9 });
  assert.equal(status(await live.handle(login(0, 1, true, [['InitiatorName', 'i'], ['TargetName', IQN]], { tsih: 9 }))), LoginStatus.tooManyConnections);
  const gone = negotiator({ tsihLive: (t) => t === 9 });
  assert.equal(status(await gone.handle(login(0, 1, true, [['InitiatorName', 'i'], ['TargetName', IQN]], { tsih: 10 }))), LoginStatus.sessionDoesNotExist);
});

const MUTUAL_IQN = 'iqn.2026-11.io.diskless:mutual';
const mutualResolver = new StaticTargetResolver([
  { name: MUTUAL_IQN, device, readOnly: false, chap: { username: 'node1', secret: 'secretsecret1' }, mutualChap: { username: 'target1', secret: 'targetsecret1' } },
  { name: IQN, device, readOnly: false, chap: { username: 'node1', secret: 'samesecret12' }, mutualChap: { username: 'target1', secret: 'samesecret12' } },
]);

/** CHAP with the initiator's own challenge in the CHAP_N/CHAP_R PDU. */
async function mutualLogin(target: string, theirChallenge: (ours: Buffer) => Buffer, secret = 'secretsecret1', r = mutualResolver) {
  const n = negotiator({ resolver: r });
  await n.handle(login(0, 1, true, [['InitiatorName', 'i'], ['TargetName', target], ['AuthMethod', 'CHAP']]));
  const k = keys(await n.handle(login(0, 1, false, [['CHAP_A', '5']])));
  const ours = decodeBinaryValue(k.CHAP_C!)!;
  const response = chapResponse(Number(k.CHAP_I), secret, ours);
  return n.handle(login(0, 1, true, [['CHAP_N', 'node1'], ['CHAP_R', encodeBinaryValue(response)], ['CHAP_I', '77'], ['CHAP_C', encodeBinaryValue(theirChallenge(ours))]]));
}

test('mutual CHAP: the target answers CHAP_N/CHAP_R with its own secret', async () => {
  const challenge = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  const step = await mutualLogin(MUTUAL_IQN, () => challenge);
  assert.equal(step.kind, 'continue');
  assert.deepEqual(keys(step), { CHAP_N: 'target1', CHAP_R: encodeBinaryValue(chapResponse(77, 'targetsecret1', challenge)) });
  assert.equal(step.response.transit, true);
});

test('mutual CHAP refusals (0x0201): reflected challenge, one secret both ways, no mutual secret, bad CHAP_I, wrong initiator secret', async () => {
  const fresh = () => Buffer.alloc(16, 1);
  assert.equal(status(await mutualLogin(MUTUAL_IQN, (ours) => ours)), LoginStatus.authenticationFailure, 'reflected');
  assert.equal(status(await mutualLogin(IQN, fresh, 'samesecret12')), LoginStatus.authenticationFailure, 'identical secrets');
  const oneWay = new StaticTargetResolver([{ name: MUTUAL_IQN, device, readOnly: false, chap: { username: 'node1', secret: 'secretsecret1' } }]);
  assert.equal(status(await mutualLogin(MUTUAL_IQN, fresh, 'secretsecret1', oneWay)), LoginStatus.authenticationFailure, 'no mutual secret configured');
  assert.equal(status(await mutualLogin(MUTUAL_IQN, fresh, 'wrongsecret1')), LoginStatus.authenticationFailure, 'the initiator fails first');
  const n = negotiator({ resolver: mutualResolver });
  await n.handle(login(0, 1, true, [['InitiatorName', 'i'], ['TargetName', MUTUAL_IQN], ['AuthMethod', 'CHAP']]));
  const k = keys(await n.handle(login(0, 1, false, [['CHAP_A', '5']])));
  const r = chapResponse(Number(k.CHAP_I), 'secretsecret1', decodeBinaryValue(k.CHAP_C!)!);
  assert.equal(status(await n.handle(login(0, 1, true, [['CHAP_N', 'node1'], ['CHAP_R', encodeBinaryValue(r)], ['CHAP_I', '300'], ['CHAP_C', '0x01']]))), LoginStatus.authenticationFailure, 'CHAP_I above 255');
});

test('discovery CHAP: required when configured, mutual answered with the discovery mutual secret', async () => {
  const discoveryChap = { username: 'disc', secret: 'discoverysecret' };
  const n = negotiator({ discoveryChap, discoveryMutualChap: { username: 'portal', secret: 'portalsecret1' } });
  assert.equal(keys(await n.handle(login(0, 1, true, [['InitiatorName', 'i'], ['SessionType', 'Discovery'], ['AuthMethod', 'CHAP,None']]))).AuthMethod, 'CHAP');
  const k = keys(await n.handle(login(0, 1, false, [['CHAP_A', '5']])));
  const r = chapResponse(Number(k.CHAP_I), 'discoverysecret', decodeBinaryValue(k.CHAP_C!)!);
  const step = await n.handle(login(0, 1, true, [['CHAP_N', 'disc'], ['CHAP_R', encodeBinaryValue(r)], ['CHAP_I', '1'], ['CHAP_C', '0x0102030405060708090a0b0c0d0e0f10']]));
  assert.equal(keys(step).CHAP_N, 'portal');
  const open = await negotiator({ discoveryChap }).handle(login(0, 1, true, [['InitiatorName', 'i'], ['SessionType', 'Discovery'], ['AuthMethod', 'None']]));
  assert.equal(status(open), LoginStatus.authenticationFailure);
});

test("libiscsi's real CHAP exchange (captured against tgt): its CHAP_R verifies for the right secret only", async () => {
  const { capturedPdus } = await import('../../../test/support/iscsi-captures.js');
  const { verifyChapResponse } = await import('./chap.js');
  for (const [file, ok] of [['libiscsi-chap.pcap', true], ['libiscsi-chap-wrong.pcap', false]] as const) {
    const text = capturedPdus(file).filter((p) => (p.bytes[0]! & 0x3f) === IscsiOpcode.loginRequest || (p.bytes[0]! & 0x3f) === IscsiOpcode.loginResponse).map((p) => Object.fromEntries(decodeTextKeys(p.bytes.subarray(48, 48 + p.bytes.readUIntBE(5, 3))).map((x) => [x.key, x.value])));
    const challenge = text.find((k) => k.CHAP_C !== undefined)!;
    const answer = text.find((k) => k.CHAP_R !== undefined)!;
    assert.equal(answer.CHAP_N, 'node1');
    assert.equal(verifyChapResponse(Number(challenge.CHAP_I), 'secretsecret1', decodeBinaryValue(challenge.CHAP_C!)!, decodeBinaryValue(answer.CHAP_R!)!), ok, file);
  }
});
