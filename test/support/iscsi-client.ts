/**
 * A small iSCSI initiator over real TCP, built on our own codec, for driving the target in
 * tests PDU by PDU (login with or without CHAP, SCSI commands answering R2Ts, raw PDUs for
 * malformed-input tests). Not a mock: it speaks the protocol to the real server.
 */
import { connect, type Socket } from 'node:net';
import { IscsiOpcode, RESERVED_TAG } from '../../src/wire/iscsi/iscsi-constants.js';
import { parsePdu, type InitiatorPdu, type IscsiPdu, type LoginResponse } from '../../src/wire/iscsi/iscsi-pdu.js';
import { encodePduBuffer, NO_DIGESTS, PduReader, type DigestOptions } from '../../src/wire/iscsi/pdu-framing.js';
import { decodeTextKeys, encodeTextKeys, type TextPair } from '../../src/wire/iscsi/text-keys.js';
import { chapResponse, decodeBinaryValue, encodeBinaryValue } from '../../src/services/iscsi/chap.js';

export interface LoginOptions {
  readonly target?: string;
  readonly discovery?: boolean;
  readonly chap?: { username: string; secret: string };
  /** Mutual CHAP: the challenge sent with CHAP_R; the target's CHAP_N/CHAP_R must answer it with this secret. */
  readonly mutual?: { username: string; secret: string; challenge?: Buffer };
  readonly initiatorName?: string;
  /** ISID of this session (default: unique per client). */
  readonly isid?: number;
  /** Operational keys to offer (defaults: the RFC defaults plus MaxRecvDataSegmentLength 8192). */
  readonly keys?: Array<[string, string]>;
  /**
   * Keep the unit attention a new session starts with (29/00 new nexus, 29/07 nexus loss).
   * By default login() consumes it with TEST UNIT READY, as initiators do after logging in.
   */
  readonly keepUnitAttention?: boolean;
}

export interface CommandResult {
  readonly status: number;
  readonly sense: Buffer;
  readonly data: Buffer;
  readonly residual: number;
  readonly underflow: boolean;
  readonly overflow: boolean;
  /** Every PDU the target sent for the command (Data-In, R2T, SCSI Response). */
  readonly pdus: IscsiPdu[];
}

let nextIsid = 1;

export class IscsiTestClient {
  private readonly reader = new PduReader({ maxDataSegmentLength: 1 << 24 });
  private readonly queue: IscsiPdu[] = [];
  private waiter: (() => void) | null = null;
  private ended = false;
  cmdSN = 1;
  expStatSN = 0;
  private itt = 0x1000;
  /** Keys the target answered in the last login step. */
  lastKeys: Record<string, string> = {};
  /** Digests in force (switched on after a login that negotiated CRC32C). */
  digests: DigestOptions = NO_DIGESTS;
  private isid = 0x400000000000 + (nextIsid++ & 0xffffff);

  private constructor(readonly socket: Socket) {
    socket.on('data', (c: Buffer) => {
      for (const raw of this.reader.push(c)) this.queue.push(parsePdu(raw));
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number, host = '127.0.0.1'): Promise<IscsiTestClient> {
    return new Promise((resolve, reject) => {
      const s = connect(port, host, () => resolve(new IscsiTestClient(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** True once the target closed the connection. */
  get closed(): boolean {
    return this.ended;
  }

  send(pdu: InitiatorPdu | Buffer): void {
    this.socket.write(Buffer.isBuffer(pdu) ? pdu : encodePduBuffer(pdu, this.digests));
  }

  /** The next PDU from the target; rejects on timeout or when the connection closes first. */
  async next(timeoutMs = 3000): Promise<IscsiPdu> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      if (this.ended) throw new Error('connection closed by the target');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timeout waiting for a PDU');
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, left).unref();
      });
    }
    const p = this.queue.shift()!;
    // R2T, Data-In without status and a target ping (NOP-In with ITT 0xffffffff, §11.19) carry StatSN without advancing it.
    const carries = 'statSN' in p && p.opcode !== IscsiOpcode.r2t && !(p.opcode === IscsiOpcode.dataIn && !p.statusPresent) && !(p.opcode === IscsiOpcode.nopIn && p.itt === RESERVED_TAG);
    if (carries) this.expStatSN = (p.statSN + 1) >>> 0;
    return p;
  }

  /** Resolves when the target closes the connection (or after timeoutMs with false). */
  async waitClosed(timeoutMs = 3000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended && Date.now() < deadline) {
      this.queue.length = 0;
      await new Promise<void>((r) => {
        this.waiter = r;
        setTimeout(r, 50).unref();
      });
    }
    return this.ended;
  }

  newItt(): number {
    return this.itt++;
  }

  private loginPdu(csg: number, nsg: number, transit: boolean, kv: Array<[string, string]>): InitiatorPdu {
    return { opcode: IscsiOpcode.loginRequest, transit, continue: false, csg, nsg, versionMax: 0, versionMin: 0, isid: this.isid, tsih: 0, itt: 1, cid: 0, cmdSN: this.cmdSN, expStatSN: this.expStatSN, data: encodeTextKeys(kv.map(([key, value]) => ({ key, value }))) };
  }

  private async step(csg: number, nsg: number, transit: boolean, kv: Array<[string, string]>): Promise<LoginResponse> {
    this.send(this.loginPdu(csg, nsg, transit, kv));
    const r = await this.next();
    if (r.opcode !== IscsiOpcode.loginResponse) throw new Error(`expected a login response, got opcode ${r.opcode}`);
    this.lastKeys = Object.fromEntries(decodeTextKeys(r.data).map((p: TextPair) => [p.key, p.value]));
    return r;
  }

  /** Logs in; returns the final (or first failing) Login Response. */
  async login(o: LoginOptions): Promise<LoginResponse> {
    if (o.isid !== undefined) this.isid = o.isid;
    const r = await this.loginSteps(o);
    if (r.statusClass === 0 && r.transit && r.nsg === 3) {
      // Digests apply from the first PDU after the final login response (RFC 7143 §13.1).
      this.digests = { header: this.lastKeys.HeaderDigest === 'CRC32C', data: this.lastKeys.DataDigest === 'CRC32C' };
      this.reader.digests = this.digests;
      if (!o.discovery && o.target && !o.keepUnitAttention) {
        const keys = this.lastKeys;
        const tur = Buffer.alloc(6);
        for (let i = 0; i < 4 && (await this.scsi(tur)).status !== 0; i++);
        this.lastKeys = keys;
      }
    }
    return r;
  }

  private async loginSteps(o: LoginOptions): Promise<LoginResponse> {
    const leading: Array<[string, string]> = [['InitiatorName', o.initiatorName ?? 'iqn.2026-11.io.diskless:test-client'], ['SessionType', o.discovery ? 'Discovery' : 'Normal']];
    if (o.target) leading.push(['TargetName', o.target]);
    const operational = o.keys ?? [['MaxRecvDataSegmentLength', '8192']];
    if (!o.chap) {
      return this.step(1, 3, true, [...leading, ...operational]);
    }
    let r = await this.step(0, 1, true, [...leading, ['AuthMethod', 'CHAP,None']]);
    if (r.statusClass !== 0) return r;
    r = await this.step(0, 1, false, [['CHAP_A', '5']]);
    if (r.statusClass !== 0) return r;
    const challenge = decodeBinaryValue(this.lastKeys.CHAP_C ?? '')!;
    const answer = chapResponse(Number(this.lastKeys.CHAP_I), o.chap.secret, challenge);
    const mutual = o.mutual ? [['CHAP_I', '7'], ['CHAP_C', encodeBinaryValue(o.mutual.challenge ?? Buffer.alloc(16, 0x3c))]] as Array<[string, string]> : [];
    r = await this.step(0, 1, true, [['CHAP_N', o.chap.username], ['CHAP_R', encodeBinaryValue(answer)], ...mutual]);
    if (r.statusClass !== 0) return r;
    if (o.mutual) {
      const want = encodeBinaryValue(chapResponse(7, o.mutual.secret, o.mutual.challenge ?? Buffer.alloc(16, 0x3c)));
      if (this.lastKeys.CHAP_N !== o.mutual.username || this.lastKeys.CHAP_R?.toLowerCase() !== want) throw new Error(`the target failed mutual CHAP: ${JSON.stringify(this.lastKeys)}`);
    }
    return this.step(1, 3, true, operational);
  }

  /**
   * Runs one SCSI command. `read`: expected Data-In length; `write`: data, of which
   * `immediate` bytes go in the command PDU and `unsolicited` more in Data-Out PDUs before
   * any R2T; the rest is sent as R2Ts ask.
   */
  async scsi(cdb: Buffer, o: { read?: number; write?: Buffer; immediate?: number; unsolicited?: number; lun?: bigint; segment?: number } = {}): Promise<CommandResult> {
    const itt = this.newItt();
    const w = o.write ?? Buffer.alloc(0);
    const imm = Math.min(o.immediate ?? 0, w.length);
    const lun = o.lun ?? 0n;
    const seg = o.segment ?? 8192;
    const unsolicitedEnd = Math.min(w.length, imm + (o.unsolicited ?? 0));
    const cmd16 = Buffer.alloc(16);
    cdb.copy(cmd16);
    this.send({ opcode: IscsiOpcode.scsiCommand, immediate: false, final: unsolicitedEnd === imm, read: (o.read ?? 0) > 0, write: w.length > 0, attribute: 1, lun, itt, expectedDataTransferLength: o.read ?? w.length, cmdSN: this.cmdSN, expStatSN: this.expStatSN, cdb: cmd16, ahs: Buffer.alloc(0), data: w.subarray(0, imm) });
    this.cmdSN = (this.cmdSN + 1) >>> 0;
    const sendData = (ttt: number, from: number, to: number) => {
      let dataSN = 0;
      for (let off = from; off < to; off += seg) {
        const end = Math.min(to, off + seg);
        this.send({ opcode: IscsiOpcode.dataOut, final: end === to, lun, itt, ttt, expStatSN: this.expStatSN, dataSN: dataSN++, bufferOffset: off, data: w.subarray(off, end) });
      }
    };
    if (unsolicitedEnd > imm) sendData(RESERVED_TAG, imm, unsolicitedEnd);
    const pdus: IscsiPdu[] = [];
    const data: Buffer[] = [];
    for (;;) {
      const p = await this.next();
      pdus.push(p);
      if (p.opcode === IscsiOpcode.r2t) {
        sendData(p.ttt, p.bufferOffset, p.bufferOffset + p.desiredDataTransferLength);
        continue;
      }
      if (p.opcode === IscsiOpcode.dataIn) {
        data.push(p.data);
        if (p.statusPresent) return { status: p.status, sense: Buffer.alloc(0), data: Buffer.concat(data), residual: p.residualCount, underflow: p.underflow, overflow: p.overflow, pdus };
        continue;
      }
      if (p.opcode === IscsiOpcode.scsiResponse) {
        const sense = p.data.length >= 2 ? p.data.subarray(2, 2 + p.data.readUInt16BE(0)) : Buffer.alloc(0);
        return { status: p.status, sense, data: Buffer.concat(data), residual: p.residualCount, underflow: p.underflow, overflow: p.overflow, pdus };
      }
      throw new Error(`unexpected opcode 0x${p.opcode.toString(16)} during a command`);
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
