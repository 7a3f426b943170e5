import { isDisklessError } from '../../errors/index.js';
import type { Logger } from '../../observe/logger.js';
import type { Metrics } from '../../observe/metrics.js';
import type { BlockDevice } from '../../store/block-device.js';
import { BROADCAST_MAC } from '../../wire/ethernet/ethernet-frame.js';
import { AOE_VERSION, AoeCommand, AoeError, AoeFlag, responseHeader, type AoeHeader } from '../../wire/aoe/aoe-header.js';
import { AOE_ARG_OFFSET, AOE_ATA_DATA_OFFSET, MIN_FRAME_LENGTH, decodeAoeBody, encodeAoeFrame, writeFrameHeader, type AoeFrame } from '../../wire/aoe/aoe-frame.js';
import { ATA_HEADER_LENGTH, AtaErrorBit, AtaStatus, POWER_MODE_ACTIVE, SECTOR_SIZE, writeAtaHeader, type AtaArg } from '../../wire/aoe/ata-command.js';
import { encodeIdentifyDevice } from '../../wire/aoe/identify-device.js';
import { MaskCommand, MaskError, encodeMacMaskList, type MacMaskList } from '../../wire/aoe/mac-mask-list.js';
import { ConfigCommand, MAX_CONFIG_STRING, QUERY_CONFIG_LENGTH, encodeQueryConfig, type QueryConfig } from '../../wire/aoe/query-config.js';
import { ReserveCommand, encodeReserveRelease, type ReserveRelease } from '../../wire/aoe/reserve-release.js';
import { macToBuffer } from '../../wire/ethernet/ethernet-frame.js';
import { Crc32c } from '../../wire/checksum/crc32c.js';
import { applyReserve, editMaskList, macText } from './access-lists.js';
import type { AoeLink } from './aoe-link.js';
import type { AoeStateStore, AoeTargetState } from './aoe-state-store.js';
import { ATA_ERROR_STATUS, ATA_OK_STATUS, planAta } from './ata-plan.js';
import { decideQueryConfig } from './query-config-reply.js';
import { SectorIo } from './sector-io.js';
import { FramePool } from './frame-pool.js';
import { ReadMerger } from './read-merger.js';
import { TagLedger } from './tag-ledger.js';

export interface AoeTargetOptions {
  readonly shelf: number;
  readonly slot: number;
  /** What is served: a volume's BlockDevice (the caller opens and closes it). */
  readonly device: BlockDevice;
  /** Volume or file name, for logs and metrics. */
  readonly name: string;
  /** Allow list from the configuration: seeds the Mac Mask List (see AoeTargetState.seededAllow). */
  readonly allow?: readonly string[];
  /** Requests executed at once; more are dropped (the initiator retransmits). Advertised as Buffer Count. */
  readonly bufferCount: number;
  /** Where the config string, mask list and reserve list are kept. */
  readonly state: AoeStateStore;
  /** Every write is durable before it is answered (as vblade -s), not only after FLUSH CACHE. */
  readonly syncWrites?: boolean;
  /** Firmware version in Query Config answers and IDENTIFY. */
  readonly firmwareVersion: number;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** How long a write's answer is kept to answer a retransmit. Default 30 s. */
  readonly replayMs?: number;
  readonly crc?: Crc32c;
}

/** Metric names; label `target` = "e<shelf>.<slot>". */
export const AoeMetric = {
  requests: 'diskless_aoe_requests_total',
  dropped: 'diskless_aoe_dropped_total',
  errors: 'diskless_aoe_error_responses_total',
  replayed: 'diskless_aoe_retransmits_answered_total',
  bytesRead: 'diskless_aoe_read_bytes_total',
  bytesWritten: 'diskless_aoe_written_bytes_total',
} as const;

const COMMAND_NAMES = ['ata', 'config', 'mask', 'reserve'];

/**
 * One AoE target (a shelf.slot): the protocol state of AoE r11 around one BlockDevice. The
 * server hands it every frame addressed to it (or broadcast) with the link it came in on;
 * it checks the mask and reserve lists, executes, and answers on that link. ATA reads go
 * straight from the device into the answer frame; writes take their data from the request
 * frame. State changes (config string, mask list, reserve list) are saved before they are
 * answered, one at a time.
 */
export class AoeTarget {
  readonly label: string;
  private state: AoeTargetState = { config: Buffer.alloc(0), mask: [], reserve: [], seededAllow: [] };
  /** The mask and reserve lists as 48-bit numbers, for the per-frame checks. */
  private mask = new Set<number>();
  private reserved: number[] = [];
  /** ATA commands executing now (at most bufferCount). */
  private inFlight = 0;
  /** Label sets per drop reason, built once. */
  private readonly dropLabels = new Map<string, { target: string; reason: string }>();
  private readonly ledger: TagLedger;
  /** Read answers, reused once sent (write answers are kept by the ledger, so never pooled). */
  private readonly frames: FramePool;
  private readonly io: SectorIo;
  /** Adjacent reads of one batch of frames become one device read. */
  private readonly reads: ReadMerger;
  private readonly identify: Buffer;
  private readonly sectors: number;
  private stateChain: Promise<void> = Promise.resolve();
  private readonly crc: Crc32c;
  private closed = false;
  private readonly labels: { target: string };
  /** Label sets per command, built once (metrics on the hot path allocate nothing). */
  private readonly commandLabels: ReadonlyArray<{ target: string; command: string }>;

  constructor(private readonly o: AoeTargetOptions) {
    this.label = `e${o.shelf}.${o.slot}`;
    this.labels = { target: this.label };
    this.commandLabels = [...COMMAND_NAMES, 'other'].map((command) => ({ target: this.label, command }));
    this.ledger = new TagLedger(Math.max(64, o.bufferCount * 4), o.replayMs ?? 30_000);
    this.io = new SectorIo(o.device);
    this.reads = new ReadMerger(this.io);
    this.frames = new FramePool(o.bufferCount);
    this.sectors = Math.floor(o.device.size / SECTOR_SIZE);
    this.crc = o.crc ?? new Crc32c();
    this.identify = encodeIdentifyDevice({
      sectors: this.sectors,
      serial: `${o.shelf}.${o.slot}:${o.name}`.replace(/[^\x20-\x7e]/g, '?').slice(0, 20),
      firmware: `V${o.firmwareVersion}`.slice(0, 8),
      model: 'diskless AoE target',
      physicalBlockSize: o.device.blockSize,
    });
  }

  get shelf(): number {
    return this.o.shelf;
  }
  get slot(): number {
    return this.o.slot;
  }
  get device(): BlockDevice {
    return this.o.device;
  }
  /** The current Mac Mask List (canonical MAC text). */
  get maskList(): readonly string[] {
    return this.state.mask;
  }
  get reserveList(): readonly string[] {
    return this.state.reserve;
  }
  get configString(): Buffer {
    return this.state.config;
  }

  /**
   * Loads the saved state. The configuration's allow list seeds the mask list the first time,
   * and again whenever it differs from the list last seeded (the configuration changed);
   * otherwise edits made over AoE stand.
   */
  async open(): Promise<void> {
    const saved = await this.o.state.load();
    const allow = normalizeMacs(this.o.allow ?? []);
    const state = saved ? this.reseeded(saved, allow) : { config: Buffer.alloc(0), mask: allow, reserve: [], seededAllow: allow };
    if (!saved || state !== saved) await this.o.state.save(state);
    this.setState(state);
  }

  /**
   * Applies a new configured allow list while serving (the configuration was reloaded): the
   * mask list is re-seeded from it if it differs from the list last seeded, as at `open`.
   * Resolves once the change is saved, or refused (logged; the old list stays).
   */
  reseed(allow: readonly string[]): Promise<void> {
    return this.afterChanges(async () => {
      const next = this.reseeded(this.state, normalizeMacs(allow));
      if (next !== this.state) await this.commit(next, () => undefined, () => undefined);
    });
  }

  /** `state` with its mask list re-seeded from `allow` when the configured list changed, else `state` itself. */
  private reseeded(state: AoeTargetState, allow: readonly string[]): AoeTargetState {
    if (sameList(state.seededAllow, allow)) return state;
    this.o.log.info({ target: this.label, was: state.mask, now: allow }, 'AoE mask list re-seeded: the configured allow list changed');
    return { ...state, mask: allow, seededAllow: allow };
  }

  /** Stops answering; waits for state saves in progress. */
  async close(): Promise<void> {
    this.closed = true;
    await this.stateChain;
  }

  /** Announces the target on `link` (AoE r11 §3.2: an unsolicited Query Config answer): broadcast, or to each MAC of a non-empty mask list. */
  announce(link: AoeLink): void {
    const header: AoeHeader = { version: AOE_VERSION, flags: AoeFlag.response, error: 0, shelf: this.o.shelf, slot: this.o.slot, command: AoeCommand.queryConfig, tag: 0 };
    const arg = this.queryConfigArg(link, ConfigCommand.read, this.state.config);
    const to = this.state.mask.length === 0 ? [BROADCAST_MAC] : this.state.mask.map(macToBuffer);
    for (const mac of to) this.send(link, encodeAoeFrame(mac, link.mac, header, arg));
  }

  /** Handles one request frame addressed to this target (or broadcast) that arrived on `link`. */
  handle(f: AoeFrame, link: AoeLink): void {
    // The source as a number: no string per frame on the read path (text only where a list changes).
    const source = f.source.readUIntBE(0, 6);
    if (this.closed || (this.mask.size !== 0 && !this.mask.has(source))) return this.drop('masked');
    const h = f.header;
    this.o.metrics.inc(AoeMetric.requests, this.commandLabels[Math.min(h.command, COMMAND_NAMES.length)]);
    if (h.version !== AOE_VERSION) return this.answerError(f, link, AoeError.unsupportedVersion);
    let body;
    try {
      body = decodeAoeBody(h.command, f.arg);
    } catch (err) {
      if (!isDisklessError(err)) throw err;
      return this.answerError(f, link, AoeError.badArgument);
    }
    if (body === undefined) return this.answerError(f, link, AoeError.unrecognizedCommand);
    switch (body.command) {
      case AoeCommand.ata:
        return this.ata(f, link, source, body.ata);
      case AoeCommand.queryConfig:
        return this.queryConfig(f, link, body.queryConfig);
      case AoeCommand.macMaskList:
        return this.macMask(f, link, body.macMaskList);
      case AoeCommand.reserveRelease:
        return this.reserve(f, link, macText(f.source), body.reserveRelease);
    }
  }

  // ---- ATA ----

  private ata(f: AoeFrame, link: AoeLink, source: number, arg: AtaArg): void {
    const plan = planAta(arg, { maxSectors: link.maxSectors, sectors: this.sectors, readOnly: this.o.device.readOnly });
    if (plan.kind !== 'identify' && this.reserved.length !== 0 && !this.reserved.includes(source)) return this.answerError(f, link, AoeError.targetReserved);
    switch (plan.kind) {
      case 'badArgument':
        this.o.log.debug({ target: this.label, source: macText(f.source), why: plan.why }, 'AoE ATA request refused (bad argument)');
        return this.answerError(f, link, AoeError.badArgument);
      case 'ataError':
        return this.answerAta(f, link, arg, plan.status, plan.error, 0, plan.lba);
      case 'checkPower':
        return this.answerAta(f, link, arg, ATA_OK_STATUS, 0, POWER_MODE_ACTIVE, arg.lba);
      case 'identify': {
        const frame = this.ataFrame(f, link, arg, ATA_OK_STATUS, 0, 0, arg.lba, this.identify.length);
        this.identify.copy(frame, AOE_ATA_DATA_OFFSET);
        return this.send(link, frame);
      }
      default:
        break;
    }
    // Writes go through the tag ledger (a retransmit must not write twice); a read retransmitted
    // while the first is still running is simply executed again (its extra answer is harmless).
    let key = '';
    let fingerprint = '';
    if (plan.kind === 'write') {
      key = TagLedger.key(source, f.header.tag);
      if (this.ledger.isRunning(key)) return this.drop('retransmit-running');
      fingerprint = `${plan.lba}/${plan.sectors}/${this.crc.of(plan.data)}`;
      const again = this.ledger.replay(key, fingerprint);
      if (again) {
        this.o.metrics.inc(AoeMetric.replayed, this.labels);
        return this.send(link, again);
      }
    }
    if (this.inFlight >= this.o.bufferCount) return this.drop('buffers-full');
    this.inFlight++;
    if (key !== '') this.ledger.begin(key);
    // A write or flush must not overtake the reads that arrived before it.
    if (plan.kind !== 'read') this.reads.flush();
    void this.execute(f, link, arg, plan, key, fingerprint);
  }

  private async execute(f: AoeFrame, link: AoeLink, arg: AtaArg, plan: Extract<ReturnType<typeof planAta>, { kind: 'read' | 'write' | 'flush' }>, key: string, fingerprint: string): Promise<void> {
    let answer: Buffer | undefined;
    try {
      if (plan.kind === 'read') {
        answer = this.ataFrame(f, link, arg, ATA_OK_STATUS, 0, 0, plan.lba + plan.sectors, plan.sectors * SECTOR_SIZE, this.frames);
        if (plan.sectors > 0) await this.reads.read(plan.lba, answer.subarray(AOE_ATA_DATA_OFFSET, AOE_ATA_DATA_OFFSET + plan.sectors * SECTOR_SIZE));
        this.o.metrics.inc(AoeMetric.bytesRead, this.labels, plan.sectors * SECTOR_SIZE);
        this.inFlight--;
        this.send(link, answer, this.frames);
        return;
      } else if (plan.kind === 'write') {
        if (plan.sectors > 0) await this.io.write(plan.lba, plan.data, this.o.syncWrites === true);
        this.o.metrics.inc(AoeMetric.bytesWritten, this.labels, plan.sectors * SECTOR_SIZE);
        answer = this.ataFrame(f, link, arg, ATA_OK_STATUS, 0, 0, plan.lba + plan.sectors, 0);
      } else {
        await this.o.device.flush();
        answer = this.ataFrame(f, link, arg, ATA_OK_STATUS, 0, 0, arg.lba, 0);
      }
    } catch (err) {
      if (answer) this.frames.give(answer);
      this.inFlight--;
      if (key !== '') this.ledger.finish(key);
      if (isDisklessError(err, 'STORE_CLOSED') || this.closed) return this.answerError(f, link, AoeError.deviceUnavailable);
      const lba = plan.kind === 'flush' ? arg.lba : plan.lba;
      if (isDisklessError(err, 'STORE_CORRUPT')) {
        this.o.log.error({ target: this.label, lba, err }, 'AoE read failed its checksums: answered UNC');
        return this.answerAta(f, link, arg, ATA_ERROR_STATUS, AtaErrorBit.uncorrectable, plan.kind === 'flush' ? 0 : plan.sectors, lba);
      }
      // Out of space, read-only, I/O errors: the command is aborted and the device reports a fault.
      this.o.log.error({ target: this.label, op: plan.kind, lba, err }, 'AoE ATA command failed');
      return this.answerAta(f, link, arg, ATA_ERROR_STATUS | (isDisklessError(err, 'STORE_NO_SPACE') ? 0 : AtaStatus.deviceFault), AtaErrorBit.aborted, plan.kind === 'flush' ? 0 : plan.sectors, lba);
    }
    this.inFlight--;
    if (key !== '') this.ledger.finish(key, { fingerprint, frame: answer });
    this.send(link, answer);
  }

  /** An ATA answer frame with room for `dataLength` bytes of data after the ATA header. */
  private ataFrame(f: AoeFrame, link: AoeLink, arg: AtaArg, status: number, error: number, sectorCount: number, lba: number, dataLength: number, pool?: FramePool): Buffer {
    const length = Math.max(MIN_FRAME_LENGTH, AOE_ATA_DATA_OFFSET + dataLength);
    const frame = pool ? pool.take(length) : Buffer.allocUnsafe(length);
    writeFrameHeader(frame, f.source, link.mac, responseHeader(f.header, 0, this.address()));
    writeAtaHeader({ flags: arg.flags, featureOrError: error, sectorCount, commandOrStatus: status, lba: Math.min(lba, 2 ** 48 - 1) }, frame, AOE_ARG_OFFSET);
    frame.fill(0, AOE_ATA_DATA_OFFSET + dataLength);
    return frame;
  }

  private answerAta(f: AoeFrame, link: AoeLink, arg: AtaArg, status: number, error: number, sectorCount: number, lba: number): void {
    if ((status & AtaStatus.error) !== 0) this.o.metrics.inc(AoeMetric.errors, { ...this.labels, kind: 'ata' });
    this.send(link, this.ataFrame(f, link, arg, status, error, sectorCount, lba, 0));
  }

  // ---- Query Config, Mac Mask List, Reserve/Release ----

  private queryConfig(f: AoeFrame, link: AoeLink, qc: QueryConfig): void {
    const reply = (config: Buffer, error: number) => this.send(link, encodeAoeFrame(f.source, link.mac, responseHeader(f.header, error, this.address()), this.queryConfigArg(link, qc.command, config)));
    this.decide(qc.command === ConfigCommand.setIfEmpty || qc.command === ConfigCommand.forceSet, async () => {
      const d = decideQueryConfig(this.state.config, qc.command, qc.config);
      if (!d.answer) return;
      if (!d.changed) return reply(d.config, d.error);
      await this.commit({ ...this.state, config: d.config }, () => reply(d.config, 0), () => reply(this.state.config, AoeError.deviceUnavailable));
    });
  }

  private queryConfigArg(link: AoeLink, command: number, config: Buffer): Buffer {
    return encodeQueryConfig({ bufferCount: this.o.bufferCount, firmwareVersion: this.o.firmwareVersion, sectorCount: link.maxSectors, aoeVersion: AOE_VERSION, command: command & 0x0f, config });
  }

  private macMask(f: AoeFrame, link: AoeLink, m: MacMaskList): void {
    const reply = (error: number, list: readonly string[], count?: number) =>
      this.send(link, encodeAoeFrame(f.source, link.mac, responseHeader(f.header, 0, this.address()), encodeMacMaskList({ command: m.command, error, directives: count === undefined ? list.map((mac) => ({ command: 0, mac: macToBuffer(mac) })) : [], ...(count === undefined ? {} : { count }) })));
    if (m.command === MaskCommand.read) return reply(MaskError.none, this.state.mask);
    if (m.command !== MaskCommand.edit) return this.answerError(f, link, AoeError.badArgument);
    this.decide(true, async () => {
      const r = editMaskList(this.state.mask, m.directives);
      if (!r.ok) return reply(r.error, [], r.index);
      if (sameList(r.list, this.state.mask)) return reply(MaskError.none, this.state.mask);
      await this.commit({ ...this.state, mask: r.list }, () => reply(MaskError.none, r.list), () => reply(MaskError.unspecified, [], 0));
    });
  }

  private reserve(f: AoeFrame, link: AoeLink, source: string, rr: ReserveRelease): void {
    const reply = (list: readonly string[]) => this.send(link, encodeAoeFrame(f.source, link.mac, responseHeader(f.header, 0, this.address()), encodeReserveRelease({ command: rr.command, macs: list.map(macToBuffer) })));
    this.decide(rr.command !== ReserveCommand.read, async () => {
      const r = applyReserve(this.state.reserve, rr.command, rr.macs, source);
      if (!r.ok) return this.answerError(f, link, r.aoeError);
      if (sameList(r.list, this.state.reserve)) return reply(this.state.reserve);
      await this.commit({ ...this.state, reserve: r.list }, () => reply(r.list), () => this.answerError(f, link, AoeError.deviceUnavailable));
    });
  }

  /** A request that may change the state waits for the changes before it (afterChanges); one that only reads is answered now, from the state as last saved. */
  private decide(changes: boolean, step: () => Promise<void>): void {
    if (changes) void this.afterChanges(step);
    else step().catch((err: unknown) => this.o.log.error({ target: this.label, err }, 'AoE state request failed'));
  }

  /**
   * Runs `step` once every earlier Query Config, mask or reserve request has been decided and
   * its change saved or refused: each decides from the state as it is then, so two edits in
   * flight cannot both start from the same old list (the second would undo the first).
   */
  private afterChanges(step: () => Promise<void> | void): Promise<void> {
    const run = this.stateChain.then(async () => {
      if (!this.closed) await step();
    });
    this.stateChain = run.catch((err: unknown) => this.o.log.error({ target: this.label, err }, 'AoE state request failed'));
    return this.stateChain;
  }

  /** Saves `next`, then applies it and calls `ok`; on a failed save keeps the old state and calls `failed`. Inside afterChanges only. */
  private async commit(next: AoeTargetState, ok: () => void, failed: () => void): Promise<void> {
    try {
      await this.o.state.save(next);
    } catch (err) {
      this.o.log.error({ target: this.label, err }, 'AoE target state not saved: change refused');
      return failed();
    }
    this.setState(next);
    ok();
  }

  private setState(state: AoeTargetState): void {
    this.state = state;
    this.mask = new Set(state.mask.map(macNumber));
    this.reserved = state.reserve.map(macNumber);
  }

  // ---- plumbing ----

  private address(): { shelf: number; slot: number } {
    return { shelf: this.o.shelf, slot: this.o.slot };
  }

  /** Answers with AoE error `code`, echoing the request's argument (at most its ATA header for ATA, so a refused write does not echo its data). */
  private answerError(f: AoeFrame, link: AoeLink, code: number): void {
    this.o.metrics.inc(AoeMetric.errors, { ...this.labels, kind: 'aoe', code: String(code) });
    const arg = f.arg.subarray(0, f.header.command === AoeCommand.ata ? ATA_HEADER_LENGTH : QUERY_CONFIG_LENGTH + MAX_CONFIG_STRING);
    this.send(link, encodeAoeFrame(f.source, link.mac, responseHeader(f.header, code, this.address()), arg));
  }

  private drop(reason: string): void {
    let labels = this.dropLabels.get(reason);
    if (!labels) this.dropLabels.set(reason, (labels = { target: this.label, reason }));
    this.o.metrics.inc(AoeMetric.dropped, labels);
  }

  private send(link: AoeLink, frame: Buffer, recycle?: FramePool): void {
    try {
      link.send(frame, recycle);
    } catch (err) {
      this.drop('send-failed');
      this.o.log.warn({ target: this.label, ifname: link.ifname, err }, 'AoE answer not sent');
    }
  }
}

/** "52:54:00:12:34:56" → the 48-bit number `Buffer.readUIntBE(0, 6)` gives for those bytes. */
function macNumber(mac: string): number {
  return parseInt(mac.replace(/:/g, ''), 16);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** MAC texts lower-cased, duplicates dropped, in first-seen order. */
function normalizeMacs(macs: readonly string[]): string[] {
  return [...new Set(macs.map((m) => m.toLowerCase()))];
}
