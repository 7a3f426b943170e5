/**
 * The project's own AoE r11 initiator: one raw socket on one interface, talking to one target
 * (shelf.slot) or discovering them all. Tests of our target, `diskless aoe` and bench:aoe use
 * it to read from our target and from vblade side by side, so it pipelines: up to
 * min(the target's Buffer Count, `maxOutstanding`) commands in flight, each at most the
 * target's sectors per frame, answers matched by tag and source MAC, a timed-out command sent
 * again under the same tag, `tries` sends before AOE_TIMEOUT. Needs root or CAP_NET_RAW.
 */
import { randomInt } from 'node:crypto';
import { DisklessError, isDisklessError } from '../../errors/index.js';
import { aoeFilter } from '../../net/aoe-filter.js';
import { openRawSocket } from '../../net/open-raw-socket.js';
import { FrameOutbox } from '../../net/frame-outbox.js';
import type { RawSocket } from '../../net/raw-socket.js';
import { BROADCAST_MAC, EtherType } from '../../wire/ethernet/ethernet-frame.js';
import { AOE_BROADCAST_SHELF, AOE_BROADCAST_SLOT, AOE_HEADER_LENGTH, AoeCommand, AoeFlag, decodeAoeHeader } from '../../wire/aoe/aoe-header.js';
import { AOE_ARG_OFFSET, AOE_ATA_DATA_OFFSET, AOE_OFFSET } from '../../wire/aoe/aoe-frame.js';
import { ATA_HEADER_LENGTH, AtaFlag, AtaOpcode, SECTOR_SIZE, decodeAtaArg, sectorsPerFrame } from '../../wire/aoe/ata-command.js';
import { MaskCommand, MaskDirective, decodeMacMaskList, encodeMacMaskList, type MaskDirectiveEntry } from '../../wire/aoe/mac-mask-list.js';
import { ConfigCommand, MAX_CONFIG_STRING } from '../../wire/aoe/query-config.js';
import { ReserveCommand, decodeReserveRelease, encodeReserveRelease } from '../../wire/aoe/reserve-release.js';
import { AoeCommandWindow, type InFlight } from './aoe-command-window.js';
import { decodeIdentity, decodeTargetInfo, queryConfigArg, type AoeDevice, type AoeIdentity, type AoeTargetInfo } from './aoe-device.js';
import {
  DEFAULT_AOE_DISCOVER_MS,
  DEFAULT_AOE_MAX_OUTSTANDING,
  DEFAULT_AOE_TIMEOUT_MS,
  DEFAULT_AOE_TRIES,
  FALLBACK_SECTORS_PER_COMMAND,
  type AoeInitiatorOptions,
  type AoeInitiatorStatistics,
  type AtaCommandAnswer,
  type AtaCommandRequest,
} from './aoe-initiator-options.js';
import { answersRequest, writeRequestFrame, type AoeRequest, type AoeRequestFrame, type AtaRequestFields } from './aoe-request.js';
import { SingleRequest, Transfer, describeAta, type TransferTarget } from './aoe-transfer.js';

/** Most sectors one ATA command can carry: Sector Count is one byte (and 0 means "none" here). */
const MAX_SECTOR_COUNT = 255;
/** Highest LBA + 1 of a non-extended command (28 bits). */
const LBA28_LIMIT = 2 ** 28;
const LBA48_LIMIT = 2 ** 48;
/** Largest frame the initiator writes: an ATA header and 255 sectors, or a 1024-byte config string. */
const SCRATCH_BYTES = AOE_ATA_DATA_OFFSET + MAX_SECTOR_COUNT * SECTOR_SIZE;


/** Throws AOE_INVALID_REQUEST unless `value` is an integer in [min, max]. */
function checkInteger(field: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new DisklessError('AOE_INVALID_REQUEST', `AoE initiator: ${field} ${value} is not allowed; allowed ${min}-${max}`, { field, value, allowed: `${min}-${max}` });
  }
}

export class AoeInitiator {
  /** This interface's MAC (the source of every request). */
  readonly mac: Buffer;
  /** This interface's MTU. */
  readonly mtu: number;
  private readonly socket: RawSocket;
  private readonly window: AoeCommandWindow<AoeRequest>;
  private readonly scratch = Buffer.alloc(SCRATCH_BYTES);
  private readonly owners = new Set<Transfer | SingleRequest>();
  /** Discovery broadcasts waiting for answers, by tag (outside the window: many answers, no retransmission). */
  private readonly collectors = new Map<number, (frame: Buffer) => void>();
  private timer: NodeJS.Timeout | undefined;
  /** Tries queued this turn, sent together (see sendEntry). */
  private readonly outbox: FrameOutbox;
  private closed = false;
  private located: Promise<AoeTargetInfo> | undefined;
  private target: AoeTargetInfo | undefined;
  private identity: AoeIdentity | undefined;
  private connected: Promise<AoeDevice> | undefined;
  private device: AoeDevice | undefined;
  private transferTarget: TransferTarget | undefined;
  private readonly maxOutstanding: number;
  private counters = { commands: 0, framesSent: 0, retransmits: 0, timeouts: 0, staleAnswers: 0, sendBusy: 0 };

  /** Opens the socket at once (throws NET_* errors); nothing is sent until a method is called. */
  constructor(private readonly options: AoeInitiatorOptions) {
    if (options.shelf !== undefined) checkInteger('shelf', options.shelf, 0, AOE_BROADCAST_SHELF - 1);
    if (options.slot !== undefined) checkInteger('slot', options.slot, 0, AOE_BROADCAST_SLOT - 1);
    const tries = options.tries ?? DEFAULT_AOE_TRIES;
    const timeoutMs = options.timeoutMs ?? DEFAULT_AOE_TIMEOUT_MS;
    this.maxOutstanding = options.maxOutstanding ?? DEFAULT_AOE_MAX_OUTSTANDING;
    checkInteger('tries', tries, 1, 1000);
    checkInteger('timeoutMs', timeoutMs, 1, 3_600_000);
    checkInteger('maxOutstanding', this.maxOutstanding, 1, 65535);
    if (options.maxSectorsPerCommand !== undefined) checkInteger('maxSectorsPerCommand', options.maxSectorsPerCommand, 1, MAX_SECTOR_COUNT);
    const open = options.openSocket ?? openRawSocket;
    this.socket = open({ ifname: options.ifname, etherType: EtherType.aoe, filter: aoeFilter('responses') });
    this.mac = this.socket.mac;
    this.outbox = new FrameOutbox(this.socket);
    this.mtu = this.socket.mtu;
    // Until Query Config tells the target's Buffer Count, one command at a time.
    this.window = new AoeCommandWindow<AoeRequest>({ limit: 1, timeoutMs, tries, firstTag: options.firstTag ?? randomInt(2 ** 32) });
    this.socket.onFrame((frame) => this.onFrame(frame));
  }

  /**
   * Broadcasts a Query Config read (shelf 0xffff, slot 0xff, or the given address) once and
   * collects the answers for `waitMs`: every target on the segment that does not mask this MAC.
   * Sorted by shelf, slot, MAC; a target answering twice is listed once.
   */
  async discover(options: { waitMs?: number; shelf?: number; slot?: number } = {}): Promise<AoeTargetInfo[]> {
    this.checkOpen();
    const waitMs = options.waitMs ?? DEFAULT_AOE_DISCOVER_MS;
    checkInteger('waitMs', waitMs, 0, 3_600_000);
    const shelf = options.shelf ?? AOE_BROADCAST_SHELF;
    const slot = options.slot ?? AOE_BROADCAST_SLOT;
    const tag = this.window.allocateTag();
    const found = new Map<string, AoeTargetInfo>();
    const probe: AoeRequestFrame = { destination: BROADCAST_MAC, shelf, slot, command: AoeCommand.queryConfig, arg: queryConfigArg(ConfigCommand.read) };
    this.collectors.set(tag, (frame) => {
      if (!answersRequest(probe, frame) || (frame[AOE_OFFSET]! & AoeFlag.error) !== 0) return;
      let info: AoeTargetInfo;
      try {
        info = decodeTargetInfo(frame);
      } catch {
        this.counters.staleAnswers++; // a malformed answer: not a target we could talk to
        return;
      }
      found.set(`${info.shelf}.${info.slot}.${info.mac.toString('hex')}`, info);
    });
    try {
      this.sendFrame(probe, tag);
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    } finally {
      this.collectors.delete(tag);
    }
    return [...found.values()].sort((a, b) => a.shelf - b.shelf || a.slot - b.slot || a.mac.compare(b.mac));
  }

  /**
   * Finds the target (Query Config read to shelf.slot, broadcast), then asks IDENTIFY DEVICE;
   * sets the window and the sectors per command. Called by read/write/flush on first use;
   * the result is kept. Throws AOE_TIMEOUT when no target answers.
   */
  connect(): Promise<AoeDevice> {
    if (this.device) return Promise.resolve(this.device);
    this.connected ??= (async () => {
      const target = await this.locate();
      const identity = await this.identify();
      const fit = sectorsPerFrame(this.mtu);
      const sectorsPerCommand = Math.min(target.sectorCount === 0 ? FALLBACK_SECTORS_PER_COMMAND : target.sectorCount, fit, this.options.maxSectorsPerCommand ?? MAX_SECTOR_COUNT);
      if (sectorsPerCommand < 1) {
        throw new DisklessError('AOE_INVALID_REQUEST', `AoE initiator: interface ${this.options.ifname} has MTU ${this.mtu}, too small for one sector; allowed at least ${AOE_HEADER_LENGTH + ATA_HEADER_LENGTH + SECTOR_SIZE}`, {
          field: 'mtu',
          value: this.mtu,
          allowed: `>= ${AOE_HEADER_LENGTH + ATA_HEADER_LENGTH + SECTOR_SIZE}`,
        });
      }
      const device: AoeDevice = { ...target, identity, window: this.window.limit, sectorsPerCommand };
      this.transferTarget = { mac: target.mac, shelf: target.shelf, slot: target.slot, lba48: identity.lba48, sectorsPerCommand };
      this.device = device;
      return device;
    })().catch((err: unknown) => {
      this.connected = undefined;
      throw err;
    });
    return this.connected;
  }

  /** The target's Query Config answer (first call sends it; later ones reuse it). Sets the window to min(Buffer Count, maxOutstanding). */
  locate(): Promise<AoeTargetInfo> {
    if (this.target) return Promise.resolve(this.target);
    this.located ??= (async () => {
      const frame = await this.single({ destination: BROADCAST_MAC, ...this.address(), command: AoeCommand.queryConfig, arg: queryConfigArg(ConfigCommand.read) }, true);
      const info = decodeTargetInfo(frame);
      this.target = info;
      this.window.setLimit(Math.min(Math.max(1, info.bufferCount), this.maxOutstanding));
      return info;
    })().catch((err: unknown) => {
      this.located = undefined;
      throw err;
    });
    return this.located;
  }

  /** IDENTIFY DEVICE: capacity, LBA48, strings. Kept after the first answer. */
  async identify(): Promise<AoeIdentity> {
    if (this.identity) return this.identity;
    const frame = await this.ataFrame({ command: AtaOpcode.identifyDevice, sectorCount: 1 }, true);
    this.identity = decodeIdentity(frame.subarray(AOE_ATA_DATA_OFFSET));
    return this.identity;
  }

  /** Reads `sectors` sectors at `lba` into a new buffer. */
  async read(lba: number, sectors: number): Promise<Buffer> {
    checkInteger('sectors', sectors, 0, Number.MAX_SAFE_INTEGER / SECTOR_SIZE);
    const out = Buffer.allocUnsafe(sectors * SECTOR_SIZE);
    await this.readInto(lba, out);
    return out;
  }

  /** Reads `target.length / 512` sectors at `lba` into `target` (a multiple of 512 bytes). */
  async readInto(lba: number, target: Buffer): Promise<void> {
    await this.transfer(lba, target, false);
  }

  /** Writes `data` (a multiple of 512 bytes, unchanged until this settles) at `lba`. */
  async write(lba: number, data: Buffer): Promise<void> {
    await this.transfer(lba, data, true);
  }

  /** FLUSH CACHE (EXT when IDENTIFY offers it): resolves once the target says written data is durable. */
  async flush(): Promise<void> {
    const device = await this.connect();
    await this.ataFrame({ command: device.identity.flushExt && device.identity.lba48 ? AtaOpcode.flushCacheExt : AtaOpcode.flushCache }, true);
  }

  /** One ATA command as given, answer unchecked (E flag and ATA errors are returned, not thrown). */
  async ata(request: AtaCommandRequest): Promise<AtaCommandAnswer> {
    const frame = await this.ataFrame(request, false);
    const header = decodeAoeHeader(frame.subarray(AOE_OFFSET));
    if (frame.length < AOE_ATA_DATA_OFFSET) return { aoeError: header.error, status: 0, error: 0, sectorCount: 0, lba: 0, data: Buffer.alloc(0) };
    const arg = decodeAtaArg(frame.subarray(AOE_ARG_OFFSET));
    return { aoeError: (header.flags & AoeFlag.error) !== 0 ? header.error : 0, status: arg.commandOrStatus, error: arg.featureOrError, sectorCount: arg.sectorCount, lba: arg.lba, data: arg.data };
  }

  /**
   * Query Config with `command` (ConfigCommand) and `config` to the target. A test command the
   * target's string fails is not answered: AOE_TIMEOUT. Throws AOE_ERROR_RESPONSE on error 4
   * (set-if-empty on a set string).
   */
  async queryConfig(command: number = ConfigCommand.read, config: Buffer = Buffer.alloc(0)): Promise<AoeTargetInfo> {
    const target = await this.locate();
    const frame = await this.single({ destination: target.mac, ...this.address(), command: AoeCommand.queryConfig, arg: queryConfigArg(command, config) }, true);
    return decodeTargetInfo(frame);
  }

  /** Sets the config string: "set if empty" (AOE_ERROR_RESPONSE error 4 when another is set), or with `force` whatever it holds. */
  setConfig(config: Buffer | string, options: { force?: boolean } = {}): Promise<AoeTargetInfo> {
    const bytes = typeof config === 'string' ? Buffer.from(config) : config;
    if (bytes.length > MAX_CONFIG_STRING) checkInteger('config string length', bytes.length, 0, MAX_CONFIG_STRING);
    return this.queryConfig(options.force ? ConfigCommand.forceSet : ConfigCommand.setIfEmpty, bytes);
  }

  /** The target's Mac Mask List (empty: everyone may talk to it). */
  async readMaskList(): Promise<Buffer[]> {
    return this.maskCommand(MaskCommand.read, []);
  }

  /**
   * Edits the mask list: deletions, then additions, in one request; returns the list as the
   * target now has it. Throws AOE_MASK_REJECTED when the target refuses a directive (list full...).
   */
  async editMaskList(edit: { add?: readonly Buffer[]; delete?: readonly Buffer[] }): Promise<Buffer[]> {
    const directives: MaskDirectiveEntry[] = [
      ...(edit.delete ?? []).map((mac) => ({ command: MaskDirective.delete, mac })),
      ...(edit.add ?? []).map((mac) => ({ command: MaskDirective.add, mac })),
    ];
    return this.maskCommand(MaskCommand.edit, directives);
  }

  /** The target's reserve list (empty: not reserved). */
  async readReserve(): Promise<Buffer[]> {
    return this.reserveCommand(ReserveCommand.read, []);
  }

  /**
   * Sets the reserve list (`[]` releases). Without `force` only a host on the current list may
   * (others get AOE_ERROR_RESPONSE error 6, target reserved). Returns the list as it now is.
   */
  async setReserve(macs: readonly Buffer[], options: { force?: boolean } = {}): Promise<Buffer[]> {
    return this.reserveCommand(options.force ? ReserveCommand.forceSet : ReserveCommand.set, macs);
  }

  statistics(): AoeInitiatorStatistics {
    return { ...this.counters, inFlight: this.window.inFlight, maxInFlight: this.window.maxInFlight };
  }

  /** Closes the socket; every call still waiting rejects with AOE_CLOSED. Safe twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.window.clear();
    this.collectors.clear();
    this.socket.close();
    const err = new DisklessError('AOE_CLOSED', `AoE initiator on ${this.options.ifname} closed with commands waiting`, { ifname: this.options.ifname });
    for (const owner of this.owners) owner.fail(err);
    this.owners.clear();
  }

  // ---- internals ----

  private address(): { shelf: number; slot: number } {
    const { shelf, slot } = this.options;
    if (shelf === undefined || slot === undefined) {
      throw new DisklessError('AOE_INVALID_REQUEST', `AoE initiator on ${this.options.ifname}: no target address; allowed: pass shelf and slot (only discover works without)`, { field: 'shelf/slot', value: null, allowed: 'shelf 0-65534 and slot 0-254' });
    }
    return { shelf, slot };
  }

  private checkOpen(): void {
    if (this.closed) throw new DisklessError('AOE_CLOSED', `AoE initiator on ${this.options.ifname} is closed`, { ifname: this.options.ifname });
  }

  private async maskCommand(command: number, directives: MaskDirectiveEntry[]): Promise<Buffer[]> {
    const target = await this.locate();
    const arg = encodeMacMaskList({ command, error: 0, directives });
    const frame = await this.single({ destination: target.mac, ...this.address(), command: AoeCommand.macMaskList, arg }, true);
    const list = decodeMacMaskList(frame.subarray(AOE_ARG_OFFSET));
    if (list.error !== 0) {
      const names = ['none', 'unspecified', 'bad directive', 'list full'];
      throw new DisklessError('AOE_MASK_REJECTED', `AoE target e${target.shelf}.${target.slot} refused Mac Mask List directive ${list.count}: MError ${list.error} (${names[list.error] ?? 'unknown'})`, {
        mError: list.error,
        directive: list.count,
      });
    }
    return list.directives.map((d) => Buffer.from(d.mac));
  }

  private async reserveCommand(command: number, macs: readonly Buffer[]): Promise<Buffer[]> {
    const target = await this.locate();
    const arg = encodeReserveRelease({ command, macs });
    const frame = await this.single({ destination: target.mac, ...this.address(), command: AoeCommand.reserveRelease, arg }, true);
    return decodeReserveRelease(frame.subarray(AOE_ARG_OFFSET)).macs.map((m) => Buffer.from(m));
  }

  /** An ATA command to the located target. */
  private async ataFrame(request: AtaCommandRequest, checked: boolean): Promise<Buffer> {
    const target = await this.locate();
    const ata: AtaRequestFields = {
      flags: request.flags ?? (request.data ? AtaFlag.write : 0),
      feature: request.feature ?? 0,
      sectorCount: request.sectorCount ?? 0,
      command: request.command,
      lba: request.lba ?? 0,
      ...(request.data ? { data: request.data } : {}),
    };
    return this.single({ destination: target.mac, ...this.address(), command: AoeCommand.ata, ata }, checked);
  }

  /** Sends one request through the window; resolves with its answer frame. */
  private single(request: AoeRequestFrame, checked: boolean): Promise<Buffer> {
    this.checkOpen();
    const owner = new SingleRequest(request, checked);
    this.start(owner);
    return owner.done;
  }

  private async transfer(lba: number, buffer: Buffer, write: boolean): Promise<void> {
    this.checkOpen();
    checkInteger('lba', lba, 0, LBA48_LIMIT - 1);
    if (buffer.length % SECTOR_SIZE !== 0) {
      throw new DisklessError('AOE_INVALID_REQUEST', `AoE initiator: ${write ? 'data' : 'read buffer'} of ${buffer.length} bytes is not allowed; allowed: whole ${SECTOR_SIZE}-byte sectors`, {
        field: write ? 'data' : 'buffer',
        value: buffer.length,
        allowed: `a multiple of ${SECTOR_SIZE}`,
      });
    }
    const device = this.device ?? (await this.connect());
    const sectors = buffer.length / SECTOR_SIZE;
    const end = lba + sectors;
    const limit = Math.min(device.identity.sectors, device.identity.lba48 ? LBA48_LIMIT : LBA28_LIMIT);
    if (end > limit) {
      throw new DisklessError('AOE_OUT_OF_RANGE', `AoE ${write ? 'write' : 'read'} of ${sectors} sectors at LBA ${lba} ends past the device's ${limit} sectors`, { lba, sectors, deviceSectors: limit });
    }
    if (sectors === 0) return;
    const transfer = new Transfer(this.transferTarget!, lba, buffer, write);
    this.start(transfer);
    await transfer.done;
  }

  private start(owner: Transfer | SingleRequest): void {
    this.owners.add(owner);
    const forget = () => this.owners.delete(owner);
    owner.done.then(forget, forget);
    this.window.enqueue(owner);
    this.pump();
  }

  /** Starts what the window has room for and keeps the timeout timer armed while anything is in flight. */
  private pump(): void {
    if (this.closed) return;
    this.window.fill(Date.now(), this.sendFirst);
    this.armTimer();
  }

  private readonly sendFirst = (entry: InFlight<AoeRequest>): void => {
    this.counters.commands++;
    this.sendEntry(entry);
  };

  private readonly sendAgain = (entry: InFlight<AoeRequest>): void => {
    if (entry.command.owner.settled) {
      // its owner failed on another command: nobody waits for this one any more
      this.window.complete(entry.tag);
      return;
    }
    this.counters.retransmits++;
    this.sendEntry(entry);
  };

  private readonly giveUp = (entry: InFlight<AoeRequest>): void => {
    this.counters.timeouts++;
    const r = entry.command;
    entry.command.owner.fail(
      new DisklessError('AOE_TIMEOUT', `AoE target e${r.shelf}.${r.slot} did not answer ${describeAta(r)} (tag 0x${entry.tag.toString(16).padStart(8, '0')}) after ${entry.tries} tries on ${this.options.ifname}`, {
        shelf: r.shelf,
        slot: r.slot,
        tag: entry.tag,
        tries: entry.tries,
        ifname: this.options.ifname,
        command: r.command,
      }),
    );
  };

  /**
   * Queues one try; the tries queued in this turn leave together (sendMany: one sendmmsg, one
   * wake-up of the target per batch instead of per command).
   */
  private sendEntry(entry: InFlight<AoeRequest>): void {
    const length = writeRequestFrame(this.scratch, this.mac, entry.command, entry.tag);
    this.counters.framesSent++;
    this.outbox.push(Buffer.from(this.scratch.subarray(0, length)), (err) => {
      if (err !== undefined && !this.closed) this.sendFailed(entry, err);
    });
  }

  /** A full queue is left to the retransmit timer; any other send error fails the request. */
  private sendFailed(entry: InFlight<AoeRequest>, err: unknown): void {
    if (isDisklessError(err, 'NET_SEND_BUSY')) {
      this.counters.sendBusy++;
      return;
    }
    this.window.complete(entry.tag);
    entry.command.owner.fail(err as Error);
  }

  private sendFrame(request: AoeRequestFrame, tag: number): void {
    const length = writeRequestFrame(this.scratch, this.mac, request, tag);
    this.counters.framesSent++;
    this.socket.send(this.scratch.subarray(0, length));
  }

  private armTimer(): void {
    if (this.timer || this.closed) return;
    const next = this.window.nextDeadline();
    if (next === undefined) return;
    this.timer = setTimeout(this.onTimer, Math.max(0, next - Date.now()) + 1);
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    if (this.closed) return;
    this.window.expire(Date.now(), this.sendAgain, this.giveUp);
    this.pump();
  };

  /** One received AoE response (the filter passed only responses). */
  private onFrame(frame: Buffer): void {
    if (frame.length < AOE_ARG_OFFSET) {
      this.counters.staleAnswers++;
      return;
    }
    const tag = frame.readUInt32BE(AOE_OFFSET + 6);
    const entry = this.window.get(tag);
    if (!entry || !answersRequest(entry.command, frame)) {
      const collect = this.collectors.get(tag);
      if (collect) collect(frame);
      else this.counters.staleAnswers++;
      return;
    }
    this.window.complete(tag);
    const owner = entry.command.owner;
    if (!owner.settled) {
      try {
        owner.answer(entry.command, frame);
      } catch (err) {
        owner.fail(err as Error);
      }
    }
    this.pump();
  }
}
