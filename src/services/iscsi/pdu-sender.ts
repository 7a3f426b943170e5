/**
 * The send path of one iSCSI connection: encodes target PDUs (digests once negotiated) and
 * batches everything sent during one turn of the event loop into one corked write, with
 * backpressure on a slow initiator. Owned by IscsiConnection, one per socket.
 */
import type { Socket } from 'node:net';
import type { TargetPdu } from '../../wire/iscsi/iscsi-pdu.js';
import { encodePdu, NO_DIGESTS, type DigestOptions } from '../../wire/iscsi/pdu-framing.js';
import type { Crc32c } from '../../wire/checksum/crc32c.js';

/** Bytes queued for the initiator above which the connection stops reading new commands. */
const SEND_BACKLOG_BYTES = 4 * 1024 * 1024;

/** Encodes and batches the PDUs of one connection into its socket. */
export class PduSender {
  /** The digests applied to PDUs sent from now on; set by IscsiConnection once login completes (§13.1). */
  digests: DigestOptions = NO_DIGESTS;

  constructor(
    private readonly socket: Socket,
    private readonly crc: Crc32c,
  ) {}

  /**
   * Queues one PDU. Everything sent during one turn of the event loop stays corked in the
   * socket and leaves in one writev when the turn ends (setImmediate): at queue depth 32 the
   * answers to the commands of one socket read share a syscall and mostly a TCP segment,
   * where a writev per PDU cost ~30% of the JS thread (bench:iscsi, docs/iscsi.md). It also
   * keeps a PDU's header, data and padding in one segment where they fit: iPXE keeps a
   * single unacknowledged segment in flight and was seen dropping the data segment that
   * trailed a bare 48-byte header (an ~11 ms retransmission per read during boot).
   *
   * Backpressure: past SEND_BACKLOG_BYTES queued (a slow initiator), stop reading commands
   * until the socket drains. `written` is called when the PDU's bytes have left (or failed to).
   * A destroyed socket drops the PDU silently.
   */
  send(pdu: TargetPdu, written?: () => void): void {
    const socket = this.socket;
    if (socket.destroyed) return;
    const chunks = encodePdu(pdu, this.digests, this.crc);
    if (!this.sendsCorked) {
      this.sendsCorked = true;
      socket.cork();
      setImmediate(this.flushSends);
    }
    const last = chunks.length - 1;
    for (let i = 0; i < last; i++) socket.write(chunks[i]!);
    // `written` runs once the kernel has the bytes (or the write failed): the data is no longer referenced.
    socket.write(chunks[last]!, written);
    if (socket.writableLength > SEND_BACKLOG_BYTES && !socket.isPaused()) socket.pause();
  }

  /** Set while this turn's PDUs sit corked in the socket. */
  private sendsCorked = false;

  /**
   * Hands the corked PDUs to the kernel (end of the turn, or before the socket is destroyed);
   * does nothing when nothing is corked. Bound, so it can be passed to setImmediate.
   */
  readonly flushSends = (): void => {
    if (!this.sendsCorked) return;
    this.sendsCorked = false;
    if (!this.socket.destroyed) this.socket.uncork();
  };
}
