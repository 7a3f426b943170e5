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
  assert.deepEqual(keys(s), { TargetPortalGroupTag: '1', HeaderDigest: 'None', InitialR2T: 'No', ImmediateData: 'Yes', FirstBurstLength: '262144', MaxBurstLength: '1048576', IFMarker: 'No', OFMarkInt: 'Irrelevant', 'X-com.example.Foo': 'NotUnderstood', MaxRecvDataSegmentLength: '262144' });
  if (s.kind === 'complete') assert.deepEqual([s.session.parameters.firstBurstLength, s.session.parameters.maxBurstLength, s.session.parameters.initialR2T], [262144, 1048576, false]);
});

test('bad operational values are answered Reject; FirstBurstLength never exceeds MaxBurstLength', async () => {
  const s = await negotiator().handle(login(1, 3, true, [['InitiatorName', 'i'], ['TargetName', IQN], ['MaxBurstLength', '4096'], ['FirstBurstLength', '65536'], ['ImmediateData', 'maybe'], ['MaxConnections', '0'], ['HeaderDigest', 'CRC32C'], ['ErrorRecoveryLevel', '2']]));
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
