/**
 * Text requests in the full feature phase (RFC 7143 §11.10-11.11): SendTargets answered from
 * the target resolver (send-targets.ts), other keys NotUnderstood, and answers longer than the
 * initiator's MaxRecvDataSegmentLength sent in pieces, each fetched with the TTT of the last.
 * One per IscsiConnection, called for each Text Request in CmdSN order.
 */
import type { Socket } from 'node:net';
import { isDisklessError } from '../../errors/index.js';
import { IscsiOpcode, RejectReason, RESERVED_TAG } from '../../wire/iscsi/iscsi-constants.js';
import type { TargetPdu, TextRequest } from '../../wire/iscsi/iscsi-pdu.js';
import { decodeTextKeys, type TextPair } from '../../wire/iscsi/text-keys.js';
import type { ConnectionContext } from './connection-context.js';
import type { EstablishedSession } from './login-negotiator.js';
import { portalAddress, sendTargetsAnswer, splitText } from './send-targets.js';

const EMPTY = Buffer.alloc(0);

/** What a text exchange needs from its connection (IscsiConnection). */
export interface TextConnection {
  /** Rejects the PDU being handled (§11.17). */
  reject(reason: number, why: string): void;
  /** A fresh target transfer tag. */
  nextTtt(): number;
  /** StatSN (advanced), ExpCmdSN and MaxCmdSN for a response, read in that order. */
  sequenceNumbers(): { statSN: number; expCmdSN: number; maxCmdSN: number };
  /** Queues a PDU for the initiator. */
  send(pdu: TargetPdu): void;
}

/** The Text Request/Response exchanges of one session, with the answers still being fetched. */
export class TextExchange {
  /** The rest of answers sent in pieces, by the TTT the initiator fetches the next piece with. */
  private readonly textPending = new Map<number, { itt: number; rest: Buffer[] }>();

  constructor(
    private readonly ctx: ConnectionContext,
    private readonly socket: Socket,
    private readonly conn: TextConnection,
  ) {}

  /** Answers one Text Request of session `s`; the listing of targets may wait on the resolver. */
  async handle(pdu: TextRequest, s: EstablishedSession): Promise<void> {
    let pieces: Buffer[];
    if (pdu.ttt !== RESERVED_TAG) {
      const pending = this.textPending.get(pdu.ttt);
      this.textPending.delete(pdu.ttt);
      if (!pending || pending.itt !== pdu.itt) return this.conn.reject(RejectReason.invalidPduField, 'text-unknown-ttt');
      pieces = pending.rest;
    } else {
      if (pdu.continue) return this.conn.reject(RejectReason.protocolError, 'text-request-continue');
      let keys: TextPair[];
      try {
        keys = decodeTextKeys(pdu.data);
      } catch (err) {
        if (!isDisklessError(err)) throw err;
        return this.conn.reject(RejectReason.invalidPduField, 'bad-text');
      }
      const answer: TextPair[] = [];
      for (const { key, value } of keys) {
        if (key !== 'SendTargets') {
          answer.push({ key, value: 'NotUnderstood' });
          continue;
        }
        const listings = await this.ctx.login.resolver.listTargets({ name: s.initiatorName, address: this.socket.remoteAddress ?? '' }).catch((err: unknown) => {
          this.ctx.log.warn({ err: (err as Error).message }, 'iscsi listTargets failed');
          return [];
        });
        const pairs = sendTargetsAnswer(value, listings, {
          discovery: s.type === 'discovery',
          ...(s.targetName !== undefined ? { sessionTarget: s.targetName } : {}),
          localPortal: portalAddress(this.socket.localAddress ?? '0.0.0.0', this.socket.localPort ?? 0),
          portalGroupTag: this.ctx.login.portalGroupTag,
        });
        answer.push(...(pairs ?? [{ key, value: 'Reject' }]));
      }
      pieces = splitText(answer, s.parameters.initiatorMaxRecvDataSegmentLength);
    }
    const [first, ...rest] = pieces;
    let ttt = RESERVED_TAG;
    if (rest.length > 0) {
      ttt = this.conn.nextTtt();
      this.textPending.set(ttt, { itt: pdu.itt, rest });
    }
    this.conn.send({ opcode: IscsiOpcode.textResponse, final: rest.length === 0, continue: rest.length > 0, lun: pdu.lun, itt: pdu.itt, ttt, ...this.conn.sequenceNumbers(), data: first ?? EMPTY });
  }

  /** Forgets the answers still being fetched (the connection closed). */
  clear(): void {
    this.textPending.clear();
  }
}
