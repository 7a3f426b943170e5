import { DisklessError, isDisklessError } from '../../errors/index.js';
import type { Logger } from '../../observe/logger.js';
import type { Metrics } from '../../observe/metrics.js';
import { aoeFilter } from '../../net/aoe-filter.js';
import { openRawSocket } from '../../net/open-raw-socket.js';
import { FrameOutbox } from '../../net/frame-outbox.js';
import type { RawSocket, RawSocketOptions } from '../../net/raw-socket.js';
import type { BlockDevice } from '../../store/block-device.js';
import { EtherType } from '../../wire/ethernet/ethernet-frame.js';
import { AOE_BROADCAST_SHELF, AOE_BROADCAST_SLOT, AoeCommand, AoeFlag } from '../../wire/aoe/aoe-header.js';
import { AOE_OFFSET, decodeAoeFrame } from '../../wire/aoe/aoe-frame.js';
import type { Service } from '../service.js';
import type { AoeLink } from './aoe-link.js';
import { sectorsPerFrame } from '../../wire/aoe/ata-command.js';
import type { AoeStateStore } from './aoe-state-store.js';
import { AoeTarget } from './aoe-target.js';

/** One target to serve: a BlockDevice at shelf.slot on the named interfaces. */
export interface AoeTargetSpec {
  /** 0-65534 (65535 is the broadcast shelf). */
  readonly shelf: number;
  /** 0-254 (255 is the broadcast slot). */
  readonly slot: number;
  readonly device: BlockDevice;
  /** Volume or file name, for logs, metrics and the IDENTIFY serial number. */
  readonly name: string;
  /** Served only on these interfaces (AoE is raw Ethernet: never on one the config does not name). */
  readonly interfaces: readonly string[];
  /** Configured allow list (MAC text); seeds the Mac Mask List. Empty or absent: every initiator. */
  readonly allow?: readonly string[];
  readonly state: AoeStateStore;
  /** Every write durable before its answer (vblade -s). Default false: durable at FLUSH CACHE. */
  readonly syncWrites?: boolean;
}

export interface AoeServerOptions {
  /**
   * Targets served from `start` on (a function is called by `start`, once the devices it names
   * are open); more can be added and removed while running.
   */
  readonly targets?: readonly AoeTargetSpec[] | (() => readonly AoeTargetSpec[]);
  /** Requests each target executes at once, advertised as Buffer Count. Default 64. */
  readonly bufferCount?: number;
  /** Announce each target (an unsolicited Query Config answer) when it comes up. Default true. */
  readonly announce?: boolean;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Opens the raw sockets; tests may inject their own. Default `openRawSocket`. */
  readonly openSocket?: (options: RawSocketOptions) => RawSocket;
}

export const AOE_SERVER_DEFAULTS = {
  bufferCount: 64,
  firmwareVersion: 1,
  /** Room for bursts of full jumbo frames from many initiators. */
  receiveBufferBytes: 8 * 1024 * 1024,
  /** Room for every buffer's answer in flight (64 × 8.7 KiB jumbo answers is ~560 KiB, over the ~208 KiB default). */
  sendBufferBytes: 8 * 1024 * 1024,
} as const;

/** One interface: its socket and the targets served on it by shelf.slot. */
interface Port {
  readonly socket: RawSocket;
  readonly link: AoeLink;
  readonly targets: Map<number, AoeTarget>;
}

const addressKey = (shelf: number, slot: number): number => shelf * 256 + slot;

/**
 * The ATA over Ethernet target server (AoE r11): one raw socket per interface that serves a
 * target, frames demultiplexed by shelf.slot to AoeTarget. Broadcast addresses (shelf 0xffff
 * or slot 0xff) reach every matching target, for Query Config only: an ATA command, mask or
 * reserve edit sent to every target at once is ignored. Frames the kernel filter passes but
 * that do not decode are counted and dropped.
 */
export class AoeServer implements Service {
  readonly name = 'aoe';
  private readonly ports = new Map<string, Port>();
  private readonly targets = new Map<string, { target: AoeTarget; spec: AoeTargetSpec }>();
  private running = false;

  constructor(private readonly o: AoeServerOptions) {}

  async start(): Promise<void> {
    this.running = true;
    try {
      const given = this.o.targets ?? [];
      for (const spec of typeof given === 'function' ? given() : given) await this.addTarget(spec);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Starts serving `spec` (announced on each of its interfaces). AOE_TARGET_CONFLICT when its shelf.slot is taken on one of them. */
  async addTarget(spec: AoeTargetSpec): Promise<AoeTarget> {
    checkAddress(spec);
    const label = `e${spec.shelf}.${spec.slot}`;
    if (this.targets.has(label)) throw conflict(spec, `${label} is already served`);
    const target = new AoeTarget({
      shelf: spec.shelf,
      slot: spec.slot,
      device: spec.device,
      name: spec.name,
      ...(spec.allow ? { allow: spec.allow } : {}),
      bufferCount: this.o.bufferCount ?? AOE_SERVER_DEFAULTS.bufferCount,
      state: spec.state,
      ...(spec.syncWrites ? { syncWrites: true } : {}),
      firmwareVersion: AOE_SERVER_DEFAULTS.firmwareVersion,
      log: this.o.log,
      metrics: this.o.metrics,
    });
    await target.open();
    this.targets.set(label, { target, spec });
    const key = addressKey(spec.shelf, spec.slot);
    try {
      for (const ifname of spec.interfaces) {
        const port = this.port(ifname);
        port.targets.set(key, target);
        if (this.o.announce ?? true) target.announce(port.link);
      }
    } catch (err) {
      await this.removeTarget(spec.shelf, spec.slot);
      throw err;
    }
    this.o.log.info({ target: label, volume: spec.name, interfaces: spec.interfaces, bytes: spec.device.size }, 'AoE target up');
    return target;
  }

  /** Stops serving shelf.slot (the caller closes its device). Sockets no target uses any more are closed. */
  async removeTarget(shelf: number, slot: number): Promise<void> {
    const label = `e${shelf}.${slot}`;
    const entry = this.targets.get(label);
    if (!entry) return;
    this.targets.delete(label);
    const key = addressKey(shelf, slot);
    for (const [ifname, port] of this.ports) {
      if (port.targets.get(key) !== entry.target) continue;
      port.targets.delete(key);
      if (port.targets.size === 0) {
        port.socket.close();
        this.ports.delete(ifname);
      }
    }
    await entry.target.close();
  }

  /** The target at shelf.slot, if served. */
  target(shelf: number, slot: number): AoeTarget | undefined {
    return this.targets.get(`e${shelf}.${slot}`)?.target;
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const { spec } of [...this.targets.values()]) await this.removeTarget(spec.shelf, spec.slot);
    for (const port of this.ports.values()) port.socket.close();
    this.ports.clear();
  }

  private port(ifname: string): Port {
    const existing = this.ports.get(ifname);
    if (existing) return existing;
    if (!this.running) throw new DisklessError('AOE_TARGET_CONFLICT', `cannot serve AoE on ${ifname}: the server is stopped`, { ifname });
    const socket = (this.o.openSocket ?? openRawSocket)({ ifname, etherType: EtherType.aoe, filter: aoeFilter('requests'), receiveBufferBytes: AOE_SERVER_DEFAULTS.receiveBufferBytes, sendBufferBytes: AOE_SERVER_DEFAULTS.sendBufferBytes });
    const outbox = new FrameOutbox(socket);
    const sent = (frame: Buffer, recycle: { give(frame: Buffer): void } | undefined) => (err?: unknown) => {
      if (err !== undefined) {
        this.o.metrics.inc('diskless_aoe_dropped_total', { ifname, reason: 'send-failed' });
        this.o.log.warn({ ifname, err }, 'AoE answer not sent');
      }
      recycle?.give(frame);
    };
    const link: AoeLink = { ifname, mac: socket.mac, maxSectors: sectorsPerFrame(socket.mtu), send: (frame, recycle) => outbox.push(frame, sent(frame, recycle)) };
    const port: Port = { socket, link, targets: new Map() };
    socket.onFrame((frame) => this.receive(port, frame));
    socket.onError?.((err) => this.o.log.warn({ ifname, err }, 'AoE receive error'));
    this.ports.set(ifname, port);
    return port;
  }

  private receive(port: Port, frame: Buffer): void {
    let f;
    try {
      f = decodeAoeFrame(frame);
    } catch (err) {
      if (!isDisklessError(err)) throw err;
      this.o.metrics.inc('diskless_aoe_malformed_frames_total', { ifname: port.link.ifname });
      return;
    }
    const h = f.header;
    if ((h.flags & AoeFlag.response) !== 0) return;
    if (h.shelf !== AOE_BROADCAST_SHELF && h.slot !== AOE_BROADCAST_SLOT) {
      port.targets.get(addressKey(h.shelf, h.slot))?.handle(f, port.link);
      return;
    }
    if (h.command !== AoeCommand.queryConfig) return;
    for (const t of port.targets.values()) {
      if ((h.shelf === AOE_BROADCAST_SHELF || h.shelf === t.shelf) && (h.slot === AOE_BROADCAST_SLOT || h.slot === t.slot)) t.handle(f, port.link);
    }
  }
}

function checkAddress(spec: AoeTargetSpec): void {
  if (!Number.isInteger(spec.shelf) || spec.shelf < 0 || spec.shelf >= AOE_BROADCAST_SHELF) throw conflict(spec, `shelf ${spec.shelf} is not allowed: 0-${AOE_BROADCAST_SHELF - 1}`);
  if (!Number.isInteger(spec.slot) || spec.slot < 0 || spec.slot >= AOE_BROADCAST_SLOT) throw conflict(spec, `slot ${spec.slot} is not allowed: 0-${AOE_BROADCAST_SLOT - 1}`);
  if (spec.interfaces.length === 0) throw conflict(spec, 'no interface to serve it on');
}

function conflict(spec: AoeTargetSpec, why: string): DisklessError {
  return new DisklessError('AOE_TARGET_CONFLICT', `cannot serve AoE target ${spec.name} at e${spec.shelf}.${spec.slot}: ${why}`, { shelf: spec.shelf, slot: spec.slot, volume: spec.name });
}
