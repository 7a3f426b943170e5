/**
 * What IscsiServer hands each IscsiConnection: logging, metrics, login options, timers, the
 * shared buffers and the registry of all sessions.
 */
import type { Socket } from 'node:net';
import type { Logger } from '../../observe/logger.js';
import type { Metrics } from '../../observe/metrics.js';
import type { Crc32c } from '../../wire/checksum/crc32c.js';
import type { EstablishedSession, LoginNegotiatorOptions } from './login-negotiator.js';
import type { ReadBufferPool } from './read-buffer-pool.js';
import type { IscsiConnection } from './iscsi-connection.js';

/** The metric names an iSCSI connection counts into. */
export const ISCSI_METRICS = { dropped: 'diskless_iscsi_dropped_total', rejects: 'diskless_iscsi_rejects_total', commands: 'diskless_iscsi_commands_total', logins: 'diskless_iscsi_logins_total', readBytes: 'diskless_iscsi_read_bytes_total', writtenBytes: 'diskless_iscsi_written_bytes_total' } as const;

/** What the server hands each connection. */
export interface ConnectionContext {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly login: Omit<LoginNegotiatorOptions, 'initiatorAddress'>;
  readonly loginTimeoutMs: number;
  /** Called when the session ends, to free its TSIH. */
  readonly onClose: (tsih: number | undefined) => void;
  /**
   * Makes the kernel acknowledge what it has received now (TCP_QUICKACK, src/net). Called when
   * a read ends inside a PDU: iPXE sends a PDU's header and data as two segments and waits for
   * our ACK in between, which Linux would otherwise delay ~40 ms (seen at every login).
   */
  readonly acknowledgeNow?: (socket: Socket) => boolean;
  /** The digest function (hardware CRC32C when the addon has it). */
  readonly crc?: Crc32c;
  /** READ buffers, taken back once the socket has written their Data-In (the server's pool). */
  readonly readBuffers?: ReadBufferPool;
  /** Idle time before the target pings with a NOP-In (dead-peer detection); 0 = never. */
  readonly nopInIntervalMs?: number;
  /** How long a ping may stay unanswered (no byte received) before the connection is dropped. */
  readonly nopInTimeoutMs?: number;
  /** The server's view of all sessions: reinstatement and task management across sessions. */
  readonly sessions?: SessionRegistry;
}

/** What a connection needs to know about the other sessions of the server. */
export interface SessionRegistry {
  /** A login completed: the registry drops an older session with the same initiator, ISID and target (reinstatement, §6.3.5). */
  established(conn: IscsiConnection, session: EstablishedSession): void;
  /** Full-feature sessions logged in to `targetName`, this one included. */
  peers(targetName: string): readonly IscsiConnection[];
}
