/**
 * How an AoeInitiator is set up and what it reports: its options with their defaults, its
 * counters, and the raw ATA command shape of `ata()`. No logic.
 */
import type { RawSocket, RawSocketOptions } from '../../net/raw-socket.js';

/** How long one try waits for its answer. vblade answers in well under 1 ms on a veth. */
export const DEFAULT_AOE_TIMEOUT_MS = 1000;
/** Sends per command, the first included, before AOE_TIMEOUT. */
export const DEFAULT_AOE_TRIES = 4;
/** Cap on commands in flight, whatever Buffer Count the target advertises. */
export const DEFAULT_AOE_MAX_OUTSTANDING = 64;
/** How long `discover` collects answers. */
export const DEFAULT_AOE_DISCOVER_MS = 1000;
/**
 * Sectors per command when a target advertises Sector Count 0, which AoE r11 §3.2 leaves
 * undefined: the Linux aoe driver's default (DEFAULTBCNT, 2 sectors) — what fits a 1500 MTU.
 */
export const FALLBACK_SECTORS_PER_COMMAND = 2;

export interface AoeInitiatorOptions {
  /** Interface to send on, e.g. "eth0". */
  readonly ifname: string;
  /** The target's shelf (major) 0-65534; needed by everything but `discover`. */
  readonly shelf?: number;
  /** The target's slot (minor) 0-254. */
  readonly slot?: number;
  /** One try's wait in ms (default DEFAULT_AOE_TIMEOUT_MS). */
  readonly timeoutMs?: number;
  /** Sends per command before AOE_TIMEOUT (default DEFAULT_AOE_TRIES). */
  readonly tries?: number;
  /** Most commands in flight (default DEFAULT_AOE_MAX_OUTSTANDING); the target's Buffer Count caps it further. */
  readonly maxOutstanding?: number;
  /** Most sectors per command below the target's (to compare targets at one frame size). */
  readonly maxSectorsPerCommand?: number;
  /** The first tag (default random, so a late answer to an earlier process's request matches nothing). */
  readonly firstTag?: number;
  /** Opens the raw socket (default `openRawSocket`); tests wrap it to drop or count frames. */
  readonly openSocket?: (options: RawSocketOptions) => RawSocket;
}

/** A raw ATA command (`ata()`): nothing checked, for tests of a target's edge cases. */
export interface AtaCommandRequest {
  readonly command: number;
  readonly feature?: number;
  readonly sectorCount?: number;
  /** The six LBA bytes as sent (no device bits added). */
  readonly lba?: number;
  /** AtaFlag bits. */
  readonly flags?: number;
  /** Data for a write. */
  readonly data?: Buffer;
}

/** The answer to a raw ATA command. */
export interface AtaCommandAnswer {
  /** AoE Error field when the E flag is set, else 0. */
  readonly aoeError: number;
  readonly status: number;
  readonly error: number;
  readonly sectorCount: number;
  readonly lba: number;
  /** Data after the ATA header (a view into the answer frame). */
  readonly data: Buffer;
}

/** Counters since construction, for tests and the CLI's --stats. */
export interface AoeInitiatorStatistics {
  /** Commands started (each counted once, however often it was sent). */
  readonly commands: number;
  /** Frames sent, retransmissions and discovery broadcasts included. */
  readonly framesSent: number;
  readonly retransmits: number;
  /** Commands given up after every try. */
  readonly timeouts: number;
  /** Answers that matched no command in flight (second answers to retransmissions, late answers). */
  readonly staleAnswers: number;
  /** Sends the kernel refused for a full queue (ENOBUFS); the retransmit timer sends them again. */
  readonly sendBusy: number;
  readonly inFlight: number;
  /** Most commands ever in flight at once. */
  readonly maxInFlight: number;
}
