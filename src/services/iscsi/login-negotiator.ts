/**
 * The login phase of one connection as a state machine (RFC 7143 §6.3, §11.12-11.13):
 * security negotiation (AuthMethod None, or CHAP-MD5 one-way or mutual, §12.1.3), the
 * initiator allow list (0x0202), operational negotiation (operational-keys.ts), then full
 * feature phase. Feed it each Login Request;
 * it returns the Login Response to send and whether login goes on, completed, or failed
 * (send the response, then close). No sockets: the resolver, the random source and the
 * TSIH allocator are injected, so tests drive it PDU by PDU.
 */
import { IscsiOpcode, ISCSI_VERSION, LoginStage, LoginStatus } from '../../wire/iscsi/iscsi-constants.js';
import type { LoginRequest, LoginResponse } from '../../wire/iscsi/iscsi-pdu.js';
import { decodeTextKeys, encodeTextKeys, type TextPair } from '../../wire/iscsi/text-keys.js';
import { isDisklessError } from '../../errors/index.js';
import { CHAP_ALGORITHM_MD5, CHAP_CHALLENGE_LENGTH, chapResponse, decodeBinaryValue, encodeBinaryValue, sameName, sameSecret, verifyChapResponse } from './chap.js';
import { OperationalNegotiation, type SessionParameters, type TargetLimits } from './operational-keys.js';
import type { ChapCredentials, InitiatorInfo, TargetBinding, TargetResolver } from './target-resolver.js';

/** What a completed login established. */
export interface EstablishedSession {
  readonly type: 'discovery' | 'normal';
  readonly initiatorName: string;
  readonly targetName?: string;
  readonly binding?: TargetBinding;
  readonly isid: number;
  readonly tsih: number;
  /** The connection's CID (§11.12.6). */
  readonly cid: number;
  readonly parameters: SessionParameters;
  /** CmdSN the first command will carry (the login's CmdSN, §4.2.2.1). */
  readonly expCmdSN: number;
  /** StatSN of the next status the target sends. */
  readonly nextStatSN: number;
}

export type LoginStep =
  | { readonly kind: 'continue'; readonly response: LoginResponse }
  | { readonly kind: 'complete'; readonly response: LoginResponse; readonly session: EstablishedSession }
  | { readonly kind: 'fail'; readonly response: LoginResponse; readonly status: LoginStatus; readonly reason: string };

export interface LoginNegotiatorOptions {
  readonly resolver: TargetResolver;
  readonly limits: TargetLimits;
  /** Remote address of the connection. */
  readonly initiatorAddress: string;
  /** Target portal group tag announced in the first response (§13.9). */
  readonly portalGroupTag: number;
  /** CHAP credentials for discovery sessions; none means discovery is open. */
  readonly discoveryChap?: ChapCredentials;
  /** What the target answers a discovery initiator's own challenge with (mutual CHAP). */
  readonly discoveryMutualChap?: ChapCredentials;
  /** True when a session with this TSIH is live (a login with TSIH ≠ 0 names one, §11.12.7). */
  readonly tsihLive?: (tsih: number) => boolean;
  /** Cryptographically random bytes (crypto.randomBytes in the server). */
  readonly randomBytes: (n: number) => Buffer;
  /** A TSIH not used by another live session, never 0 (§11.12.7). */
  readonly allocateTsih: () => number;
  /** CmdSN window granted on completion: MaxCmdSN = ExpCmdSN + window - 1. */
  readonly commandWindow: number;
}

type AuthState = 'start' | 'chapAlgorithm' | 'chapResponse' | 'done';

/** Login PDUs accepted before the login is abandoned as looping (initiator error). */
const MAX_LOGIN_PDUS = 32;
/** Text gathered over Continue PDUs before it is refused (§6.1: keys are short). */
const MAX_LOGIN_TEXT = 65536;
const SECURITY_KEYS = new Set(['AuthMethod', 'CHAP_A', 'CHAP_I', 'CHAP_C', 'CHAP_N', 'CHAP_R']);
const LEADING_KEYS = new Set(['InitiatorName', 'TargetName', 'SessionType']);

/** One connection's login. Not reusable. */
export class LoginNegotiator {
  private first: LoginRequest | null = null;
  private pdus = 0;
  /** The first complete text (leading keys) has been processed. */
  private leadingDone = false;
  private readonly leadingValues = new Map<string, string>();
  private stage: number = LoginStage.securityNegotiation;
  private statSN = 0;
  private auth: AuthState = 'start';
  private required: ChapCredentials | undefined;
  private mutual: ChapCredentials | undefined;
  private chapId = 0;
  private challenge: Buffer = Buffer.alloc(0);
  private pendingText: Buffer[] = [];
  private pendingBytes = 0;
  private initiatorName = '';
  private targetName: string | undefined;
  private sessionType: 'discovery' | 'normal' = 'normal';
  private binding: TargetBinding | undefined;
  private operational: OperationalNegotiation | undefined;

  constructor(private readonly o: LoginNegotiatorOptions) {}

  /** The target resolved by this login, if any (the server releases it when the login fails). */
  get resolvedBinding(): TargetBinding | undefined {
    return this.binding;
  }

  /** Handles one Login Request. */
  async handle(req: LoginRequest): Promise<LoginStep> {
    this.pdus++;
    if (this.first === null) {
      this.first = req;
      this.statSN = req.expStatSN;
      this.stage = req.csg;
      if (req.versionMin > ISCSI_VERSION) return this.fail(req, LoginStatus.unsupportedVersion, `version-min ${req.versionMin} is above ${ISCSI_VERSION}`);
      if (req.tsih !== 0) {
        // A TSIH names an existing session: adding a connection (or reinstating one) needs MaxConnections > 1.
        if (this.o.tsihLive?.(req.tsih)) return this.fail(req, LoginStatus.tooManyConnections, `TSIH ${req.tsih}: the session already has its one connection (MaxConnections=1)`);
        return this.fail(req, LoginStatus.sessionDoesNotExist, `TSIH ${req.tsih}: no such session`);
      }
    } else {
      if (req.isid !== this.first.isid || req.tsih !== this.first.tsih || req.cid !== this.first.cid || req.itt !== this.first.itt) {
        return this.fail(req, LoginStatus.initiatorError, 'ISID, TSIH, CID or ITT changed during login');
      }
      if (req.csg !== this.stage) return this.fail(req, LoginStatus.initiatorError, `CSG ${req.csg} but the login is in stage ${this.stage}`);
    }
    if (this.pdus > MAX_LOGIN_PDUS) return this.fail(req, LoginStatus.initiatorError, `more than ${MAX_LOGIN_PDUS} login PDUs`);
    if (req.transit && req.nsg <= req.csg) return this.fail(req, LoginStatus.initiatorError, `transit from stage ${req.csg} to ${req.nsg}`);
    if (req.csg === LoginStage.fullFeature) return this.fail(req, LoginStatus.initiatorError, 'CSG is the full feature phase');

    // §6.1: text split over PDUs with the C bit is answered with empty responses until the last part.
    this.pendingBytes += req.data.length;
    if (this.pendingBytes > MAX_LOGIN_TEXT) return this.fail(req, LoginStatus.initiatorError, `login text longer than ${MAX_LOGIN_TEXT} bytes`);
    this.pendingText.push(req.data);
    if (req.continue) {
      if (req.transit) return this.fail(req, LoginStatus.initiatorError, 'C and T both set');
      return { kind: 'continue', response: this.response(req, { transit: false, nsg: 0 }, []) };
    }
    const text = Buffer.concat(this.pendingText);
    this.pendingText = [];
    this.pendingBytes = 0;
    let keys: TextPair[];
    try {
      keys = decodeTextKeys(text);
    } catch (err) {
      if (!isDisklessError(err)) throw err;
      return this.fail(req, LoginStatus.initiatorError, err.message);
    }

    const reply: TextPair[] = [];
    const inThisText = new Set<string>();
    for (const { key } of keys) {
      if (inThisText.has(key)) return this.fail(req, LoginStatus.initiatorError, `key ${key} appears twice in one login request`);
      inThisText.add(key);
    }
    const firstText = !this.leadingDone;
    if (firstText) {
      this.leadingDone = true;
      for (const p of keys) if (LEADING_KEYS.has(p.key)) this.leadingValues.set(p.key, p.value);
      const leading = await this.leadingKeys(req, keys);
      if (leading) return leading;
      // §13.9: the first response of a Normal session MUST carry it; tgt sends it for discovery too.
      reply.push({ key: 'TargetPortalGroupTag', value: String(this.o.portalGroupTag) });
    }

    for (const { key, value } of keys) {
      if (LEADING_KEYS.has(key)) {
        // libiscsi repeats InitiatorName and SessionType in every stage: accept a repeat, refuse a change.
        if (!firstText && value !== this.leadingValues.get(key)) return this.fail(req, LoginStatus.initiatorError, `${key} changed to ${value} during login`);
        continue;
      }
      if (SECURITY_KEYS.has(key)) {
        if (this.stage !== LoginStage.securityNegotiation) return this.fail(req, LoginStatus.initiatorError, `${key} outside the security stage`);
        continue; // handled together below
      }
      if (this.operationalState().repeated(key)) return this.fail(req, LoginStatus.initiatorError, `key ${key} negotiated twice (RFC 7143 §6.2)`);
      const answer = this.operationalState().offer(key, value);
      if (answer === 'Reject' && OperationalNegotiation.declarative(key)) return this.fail(req, LoginStatus.initiatorError, `declared ${key}=${value} is out of range`);
      if (answer !== null) reply.push({ key, value: answer });
    }

    if (this.stage === LoginStage.securityNegotiation) {
      const sec = this.security(req, keys, reply);
      if (sec) return sec;
    } else if (this.required && this.auth !== 'done') {
      return this.fail(req, LoginStatus.authenticationFailure, 'the target requires CHAP and the initiator skipped the security stage');
    }
    if (this.stage === LoginStage.operationalNegotiation) reply.push(...this.operationalState().declarations());

    // Transit only when the initiator asks and the target is ready (§6.3: a target not ready answers T=0).
    const ready = this.stage !== LoginStage.securityNegotiation || this.auth === 'done' || (this.auth === 'start' && !this.required);
    if (!req.transit || !ready) return { kind: 'continue', response: this.response(req, { transit: false, nsg: 0 }, reply) };
    if (this.stage === LoginStage.securityNegotiation) this.auth = 'done';
    if (req.nsg === LoginStage.fullFeature) {
      const tsih = this.o.allocateTsih();
      const response = this.response(req, { transit: true, nsg: req.nsg, tsih, window: true }, reply);
      return {
        kind: 'complete',
        response,
        session: {
          type: this.sessionType,
          initiatorName: this.initiatorName,
          ...(this.targetName !== undefined ? { targetName: this.targetName } : {}),
          ...(this.binding ? { binding: this.binding } : {}),
          isid: req.isid,
          tsih,
          cid: req.cid,
          parameters: this.operationalState().parameters,
          expCmdSN: req.cmdSN,
          nextStatSN: this.statSN >>> 0,
        },
      };
    }
    const response = this.response(req, { transit: true, nsg: req.nsg }, reply);
    this.stage = req.nsg;
    return { kind: 'continue', response };
  }

  private operationalState(): OperationalNegotiation {
    this.operational ??= new OperationalNegotiation(this.o.limits, this.sessionType === 'discovery');
    return this.operational;
  }

  /** InitiatorName, SessionType, TargetName: the first PDU's keys (§13.2-13.5, §13.21). */
  private async leadingKeys(req: LoginRequest, keys: readonly TextPair[]): Promise<LoginStep | null> {
    const get = (k: string) => keys.find((p) => p.key === k)?.value;
    const initiator = get('InitiatorName');
    if (!initiator) return this.fail(req, LoginStatus.missingParameter, 'InitiatorName is missing');
    this.initiatorName = initiator;
    const type = get('SessionType') ?? 'Normal';
    if (type !== 'Normal' && type !== 'Discovery') return this.fail(req, LoginStatus.sessionTypeNotSupported, `SessionType ${type}`);
    this.sessionType = type === 'Discovery' ? 'discovery' : 'normal';
    if (this.sessionType === 'discovery') {
      this.required = this.o.discoveryChap;
      this.mutual = this.o.discoveryMutualChap;
      return null;
    }
    const target = get('TargetName');
    if (!target) return this.fail(req, LoginStatus.missingParameter, 'TargetName is missing in a Normal session');
    this.targetName = target;
    const who: InitiatorInfo = { name: initiator, address: this.o.initiatorAddress };
    try {
      this.binding = (await this.o.resolver.resolve(target, who)) ?? undefined;
    } catch (err) {
      return this.fail(req, LoginStatus.targetError, `resolving ${target} failed: ${(err as Error).message}`);
    }
    if (!this.binding) return this.fail(req, LoginStatus.notFound, `target ${target} not found`);
    const allowed = this.binding.allowedInitiators;
    if (allowed && !allowed.includes(initiator)) return this.fail(req, LoginStatus.authorizationFailure, `initiator ${initiator} is not allowed on ${target}`);
    this.required = this.binding.chap;
    this.mutual = this.binding.chap ? this.binding.mutualChap : undefined;
    return null;
  }

  /** AuthMethod and CHAP (§12.1.3). Appends answers to `reply`; returns a step only on failure. */
  private security(req: LoginRequest, keys: readonly TextPair[], reply: TextPair[]): LoginStep | null {
    const get = (k: string) => keys.find((p) => p.key === k)?.value;
    const method = get('AuthMethod');
    if (method !== undefined) {
      if (this.auth !== 'start') return this.fail(req, LoginStatus.initiatorError, 'AuthMethod negotiated twice');
      const offered = method.split(',');
      if (this.required) {
        if (!offered.includes('CHAP')) return this.fail(req, LoginStatus.authenticationFailure, `the target requires CHAP, the initiator offers ${method}`);
        reply.push({ key: 'AuthMethod', value: 'CHAP' });
        this.auth = 'chapAlgorithm';
        return null;
      }
      if (!offered.includes('None')) return this.fail(req, LoginStatus.authenticationFailure, `the initiator offers only ${method} and the target has no CHAP secret`);
      reply.push({ key: 'AuthMethod', value: 'None' });
      this.auth = 'done';
      return null;
    }
    if (this.auth === 'chapAlgorithm') {
      const algorithms = get('CHAP_A');
      if (algorithms === undefined) return null; // the initiator may still be answering other keys
      if (!algorithms.split(',').includes(String(CHAP_ALGORITHM_MD5))) return this.fail(req, LoginStatus.authenticationFailure, `CHAP_A ${algorithms} does not include MD5 (5)`);
      this.chapId = this.o.randomBytes(1)[0]!;
      this.challenge = this.o.randomBytes(CHAP_CHALLENGE_LENGTH);
      reply.push({ key: 'CHAP_A', value: String(CHAP_ALGORITHM_MD5) }, { key: 'CHAP_I', value: String(this.chapId) }, { key: 'CHAP_C', value: encodeBinaryValue(this.challenge) });
      this.auth = 'chapResponse';
      return null;
    }
    if (this.auth === 'chapResponse') {
      const name = get('CHAP_N');
      const r = get('CHAP_R');
      if (name === undefined || r === undefined) return this.fail(req, LoginStatus.authenticationFailure, 'CHAP_N or CHAP_R missing');
      const response = decodeBinaryValue(r);
      const creds = this.required!;
      const nameOk = sameName(name, creds.username);
      const responseOk = response !== null && verifyChapResponse(this.chapId, creds.secret, this.challenge, response);
      if (!nameOk || !responseOk) return this.fail(req, LoginStatus.authenticationFailure, 'CHAP name or response does not match');
      const theirId = get('CHAP_I');
      const theirChallenge = get('CHAP_C');
      if (theirId !== undefined || theirChallenge !== undefined) {
        // Mutual CHAP (§12.1.3): the initiator authenticates the target in the same PDU.
        if (theirId === undefined || theirChallenge === undefined) return this.fail(req, LoginStatus.authenticationFailure, 'mutual CHAP needs both CHAP_I and CHAP_C');
        const mutual = this.mutual;
        if (!mutual) return this.fail(req, LoginStatus.authenticationFailure, 'the initiator asks for mutual CHAP and the target has no mutual secret');
        if (sameSecret(mutual.secret, creds.secret)) return this.fail(req, LoginStatus.authenticationFailure, 'the mutual CHAP secret equals the initiator secret (refused, RFC 7143 §12.1.3)');
        const id = /^[0-9]{1,3}$/.test(theirId) ? Number(theirId) : 256;
        const challenge = decodeBinaryValue(theirChallenge);
        if (id > 255 || challenge === null) return this.fail(req, LoginStatus.authenticationFailure, 'malformed CHAP_I or CHAP_C');
        if (challenge.equals(this.challenge)) return this.fail(req, LoginStatus.authenticationFailure, 'the initiator reflected the target challenge');
        reply.push({ key: 'CHAP_N', value: mutual.username }, { key: 'CHAP_R', value: encodeBinaryValue(chapResponse(id, mutual.secret, challenge)) });
      }
      this.auth = 'done';
      return null;
    }
    if (keys.some((p) => p.key.startsWith('CHAP_'))) return this.fail(req, LoginStatus.initiatorError, 'CHAP keys out of sequence');
    return null;
  }

  private response(req: LoginRequest, o: { transit: boolean; nsg: number; tsih?: number; window?: boolean }, reply: readonly TextPair[]): LoginResponse {
    const statSN = this.statSN >>> 0;
    this.statSN = (this.statSN + 1) >>> 0;
    return {
      opcode: IscsiOpcode.loginResponse,
      transit: o.transit,
      continue: false,
      csg: this.stage,
      nsg: o.transit ? o.nsg : 0,
      versionMax: ISCSI_VERSION,
      versionActive: ISCSI_VERSION,
      isid: req.isid,
      tsih: o.tsih ?? 0,
      itt: req.itt,
      statSN,
      expCmdSN: req.cmdSN,
      maxCmdSN: o.window ? (req.cmdSN + this.o.commandWindow - 1) >>> 0 : req.cmdSN,
      statusClass: 0,
      statusDetail: 0,
      data: encodeTextKeys(reply),
    };
  }

  private fail(req: LoginRequest, status: LoginStatus, reason: string): LoginStep {
    const r = this.response(req, { transit: false, nsg: 0 }, []);
    return { kind: 'fail', status, reason, response: { ...r, csg: 0, statusClass: status >> 8, statusDetail: status & 0xff } };
  }
}
