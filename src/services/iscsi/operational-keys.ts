/**
 * Negotiation of the operational text keys (RFC 7143 §13) during login: each key by its rule
 * (list: the first offered value we support; Boolean OR/AND; numeric min/max; declarative),
 * the result kept as `SessionParameters`, unknown keys answered NotUnderstood, malformed or
 * out-of-range values Reject (§6.2, §6.2.1), a key offered twice in one login refused
 * (`repeated`, the negotiator fails the login with 0x0200). Pure.
 */
import type { TextPair } from '../../wire/iscsi/text-keys.js';

/** The negotiated state of one session (one connection: MaxConnections is 1). */
export interface SessionParameters {
  readonly headerDigest: boolean;
  readonly dataDigest: boolean;
  readonly maxConnections: number;
  readonly initialR2T: boolean;
  readonly immediateData: boolean;
  readonly maxBurstLength: number;
  readonly firstBurstLength: number;
  readonly defaultTime2Wait: number;
  readonly defaultTime2Retain: number;
  readonly maxOutstandingR2T: number;
  readonly dataPduInOrder: boolean;
  readonly dataSequenceInOrder: boolean;
  readonly errorRecoveryLevel: number;
  /** The initiator's MaxRecvDataSegmentLength: the largest data segment the target may send. */
  readonly initiatorMaxRecvDataSegmentLength: number;
  /** What the target declared: the largest data segment it accepts. */
  readonly targetMaxRecvDataSegmentLength: number;
}

/** RFC 7143 §13 defaults: what holds for a key nobody negotiated. */
export const RFC_DEFAULT_PARAMETERS: SessionParameters = {
  headerDigest: false,
  dataDigest: false,
  maxConnections: 1,
  initialR2T: true,
  immediateData: true,
  maxBurstLength: 262144,
  firstBurstLength: 65536,
  defaultTime2Wait: 2,
  defaultTime2Retain: 20,
  maxOutstandingR2T: 1,
  dataPduInOrder: true,
  dataSequenceInOrder: true,
  errorRecoveryLevel: 0,
  initiatorMaxRecvDataSegmentLength: 8192,
  targetMaxRecvDataSegmentLength: 8192,
};

/** The target's side of each negotiation: its offer or limit per key. */
export interface TargetLimits {
  /** Declared MaxRecvDataSegmentLength (512..2^24-1). */
  readonly maxRecvDataSegmentLength: number;
  /** Upper bound for MaxBurstLength (min rule). */
  readonly maxBurstLength: number;
  /** Upper bound for FirstBurstLength (min rule). */
  readonly firstBurstLength: number;
  /** Our InitialR2T value (OR rule): false lets initiators send unsolicited Data-Out. */
  readonly initialR2T: boolean;
  /** Our ImmediateData value (AND rule). */
  readonly immediateData: boolean;
  /** Our MaxOutstandingR2T (§13.17, min rule): R2Ts one write task may have unanswered at once. */
  readonly maxOutstandingR2T: number;
  /** Digests the target accepts in HeaderDigest/DataDigest lists: CRC32C and/or None. */
  readonly digests: readonly ('CRC32C' | 'None')[];
}

/** Defaults of `IscsiServerOptions.limits`. */
export const DEFAULT_TARGET_LIMITS: TargetLimits = {
  maxRecvDataSegmentLength: 262144,
  maxBurstLength: 1048576,
  firstBurstLength: 262144,
  initialR2T: false,
  immediateData: true,
  maxOutstandingR2T: 4,
  digests: ['CRC32C', 'None'],
};

const U24 = 0xffffff;
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Keys irrelevant in a Discovery session (RFC 7143 §13: "Irrelevant when: SessionType=Discovery"). */
const IRRELEVANT_IN_DISCOVERY = new Set(['MaxConnections', 'InitialR2T', 'ImmediateData', 'MaxBurstLength', 'FirstBurstLength', 'MaxOutstandingR2T', 'DataPDUInOrder', 'DataSequenceInOrder']);

/**
 * One login's operational negotiation. `offer` answers the initiator's keys and records the
 * results; `declarations` are the keys the target states without being asked, sent once.
 */
export class OperationalNegotiation {
  private readonly p: Mutable<SessionParameters>;
  private declared = false;
  private readonly seen = new Set<string>();

  constructor(
    private readonly limits: TargetLimits,
    private readonly discovery: boolean,
  ) {
    this.p = { ...RFC_DEFAULT_PARAMETERS, targetMaxRecvDataSegmentLength: limits.maxRecvDataSegmentLength };
  }

  /** The parameters agreed so far (FirstBurstLength clamped to MaxBurstLength, §13.14). */
  get parameters(): SessionParameters {
    return { ...this.p, firstBurstLength: Math.min(this.p.firstBurstLength, this.p.maxBurstLength) };
  }

  /** Keys the target declares once in the operational stage (MaxRecvDataSegmentLength, §13.12). */
  declarations(): TextPair[] {
    if (this.declared) return [];
    this.declared = true;
    return [{ key: 'MaxRecvDataSegmentLength', value: String(this.limits.maxRecvDataSegmentLength) }];
  }

  /**
   * True when `key` was already offered in this login (§6.2: a key is negotiated at most once;
   * the target answers a repeat with a login reject, initiator error). Records the key.
   */
  repeated(key: string): boolean {
    if (this.seen.has(key)) return true;
    this.seen.add(key);
    return false;
  }

  /** Declarative keys (§13.12, §13.6) carry no answer; a bad value in one fails the login instead. */
  static declarative(key: string): boolean {
    return key === 'MaxRecvDataSegmentLength' || key === 'InitiatorAlias';
  }

  /** Answers one operational key; null when the key needs no answer (declarative keys). */
  offer(key: string, value: string): string | null {
    if (this.discovery && IRRELEVANT_IN_DISCOVERY.has(key)) return 'Irrelevant';
    switch (key) {
      case 'HeaderDigest':
      case 'DataDigest': {
        // List rule (§6.2.1): the first value in the initiator's order that we support; none → Reject.
        const offered = value.split(',');
        if (offered.some((v) => !/^[A-Za-z0-9.:\-+@_]{1,255}$/.test(v))) return 'Reject';
        const pick = offered.find((v) => (this.limits.digests as readonly string[]).includes(v));
        if (pick === undefined) return 'Reject';
        if (key === 'HeaderDigest') this.p.headerDigest = pick === 'CRC32C';
        else this.p.dataDigest = pick === 'CRC32C';
        return pick;
      }
      case 'InitialR2T':
        return this.bool(value, (v) => (this.p.initialR2T = v || this.limits.initialR2T));
      case 'DataPDUInOrder':
        return this.bool(value, (v) => (this.p.dataPduInOrder = v || true));
      case 'DataSequenceInOrder':
        return this.bool(value, (v) => (this.p.dataSequenceInOrder = v || true));
      case 'ImmediateData':
        return this.bool(value, (v) => (this.p.immediateData = v && this.limits.immediateData));
      case 'IFMarker':
      case 'OFMarker':
        return this.bool(value, () => false); // markers (RFC 3720 §A.3) are not implemented: AND gives No
      case 'IFMarkInt':
      case 'OFMarkInt':
        return 'Irrelevant';
      case 'MaxConnections':
        return this.num(value, 1, 65535, (v) => (this.p.maxConnections = Math.min(v, 1))); // one connection per session
      case 'MaxBurstLength':
        return this.num(value, 512, U24, (v) => (this.p.maxBurstLength = Math.min(v, this.limits.maxBurstLength)));
      case 'FirstBurstLength':
        return this.num(value, 512, U24, (v) => (this.p.firstBurstLength = Math.min(v, this.limits.firstBurstLength)));
      case 'DefaultTime2Wait':
        return this.num(value, 0, 3600, (v) => (this.p.defaultTime2Wait = Math.max(v, RFC_DEFAULT_PARAMETERS.defaultTime2Wait)));
      case 'DefaultTime2Retain':
        return this.num(value, 0, 3600, (v) => (this.p.defaultTime2Retain = Math.min(v, 0))); // ERL 0: nothing to retain
      case 'MaxOutstandingR2T':
        return this.num(value, 1, 65535, (v) => (this.p.maxOutstandingR2T = Math.min(v, this.limits.maxOutstandingR2T)));
      case 'ErrorRecoveryLevel':
        return this.num(value, 0, 2, (v) => (this.p.errorRecoveryLevel = Math.min(v, 0)));
      case 'MaxRecvDataSegmentLength': {
        const v = parseNumber(value);
        if (v === null || v < 512 || v > U24) return 'Reject';
        this.p.initiatorMaxRecvDataSegmentLength = v;
        return null; // declarative (§13.12): no answer
      }
      case 'InitiatorAlias':
        return null; // declarative
      case 'TargetAlias':
      case 'TargetAddress':
      case 'TargetPortalGroupTag':
        return 'Reject'; // target-declared keys an initiator must not send (§13.6, §13.8, §13.9)
      default:
        return 'NotUnderstood';
    }
  }

  private bool(value: string, set: (v: boolean) => boolean): string {
    if (value !== 'Yes' && value !== 'No') return 'Reject';
    return set(value === 'Yes') ? 'Yes' : 'No';
  }

  private num(value: string, min: number, max: number, set: (v: number) => number): string {
    const v = parseNumber(value);
    if (v === null || v < min || v > max) return 'Reject';
    return String(set(v));
  }
}

/** RFC 7143 §6.1 numerical values: decimal, or 0x hex. Null when malformed or above 2^53. */
export function parseNumber(value: string): number | null {
  let n: number;
  if (/^[0-9]{1,16}$/.test(value)) n = Number(value);
  else if (/^0[xX][0-9a-fA-F]{1,13}$/.test(value)) n = parseInt(value.slice(2), 16);
  else return null;
  return Number.isSafeInteger(n) ? n : null;
}
