import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Lab } from '../lab.js';
import { DaemonProcess } from './daemon-process.js';

/** Defaults of the dnsmasq peer (LAB.md §2, §5). */
export const DNSMASQ_PEER_DEFAULTS = {
  binary: 'dnsmasq',
  rangeStart: '10.77.0.100',
  rangeEnd: '10.77.0.199',
  leaseTime: '1h',
  /** IPv6 prefix advertised by the tuned peer, and the bridge address it needs in it. */
  ipv6Prefix: 'fd00:77::',
  ipv6Address: 'fd00:77::1/64',
  biosBootFile: 'undionly.kpxe',
  ipxeScript: 'boot.ipxe',
  readyTimeoutMs: 10_000,
} as const;

/** Options of a dnsmasq peer inside a lab. */
export interface DnsmasqPeerOptions {
  readonly lab: Lab;
  /** TFTP root (must hold the BIOS boot file and the iPXE script). */
  readonly tftpRoot: string;
  /** Holds the lease file and the pid file. */
  readonly workDir: string;
  /**
   * false: as shipped (DHCP + TFTP only). true: the settings that make iPXE fast (LAB.md §2):
   * router advertisements (`enable-ra`, an `ra-only` range), `no-pxedhcp` via encapsulated
   * option 175.176 = 1, and `no-ping` so a new client is offered an address at once.
   */
  readonly tuned: boolean;
  readonly rangeStart?: string;
  readonly rangeEnd?: string;
  readonly ipv6Prefix?: string;
  readonly ipv6Address?: string;
  readonly binary?: string;
  readonly readyTimeoutMs?: number;
}

/**
 * dnsmasq as the peer DHCP + TFTP (+ RA when tuned) server: BIOS PXE clients get
 * undionly.kpxe, iPXE clients (option 175 present) get boot.ipxe. Runs in the foreground in the
 * lab namespace, bound to the bridge only, DNS off (`port=0`), no config file read.
 */
export class DnsmasqPeer {
  readonly options: DnsmasqPeerOptions;
  #daemon: DaemonProcess | undefined;
  #addedAddress = false;

  constructor(options: DnsmasqPeerOptions) {
    this.options = options;
  }

  /** The lease file dnsmasq writes. */
  get leaseFile(): string {
    return join(this.options.workDir, 'dnsmasq.leases');
  }

  /** The dnsmasq argument list. */
  args(): string[] {
    const o = this.options;
    const d = DNSMASQ_PEER_DEFAULTS;
    const args = [
      '--no-daemon',
      '--conf-file=/dev/null',
      '--log-facility=-',
      `--pid-file=${join(o.workDir, 'dnsmasq.pid')}`,
      `--dhcp-leasefile=${this.leaseFile}`,
      '--port=0',
      `--interface=${o.lab.bridge}`,
      '--bind-interfaces',
      `--dhcp-range=${o.rangeStart ?? d.rangeStart},${o.rangeEnd ?? d.rangeEnd},${d.leaseTime}`,
      '--dhcp-match=set:ipxe,175',
      `--dhcp-boot=tag:!ipxe,${d.biosBootFile}`,
      `--dhcp-boot=tag:ipxe,${d.ipxeScript}`,
      '--enable-tftp',
      `--tftp-root=${o.tftpRoot}`,
    ];
    if (o.tuned) {
      args.push('--enable-ra', `--dhcp-range=${o.ipv6Prefix ?? d.ipv6Prefix},ra-only`, '--dhcp-option=encap:175,176,1b', '--no-ping');
    }
    return args;
  }

  /** Starts dnsmasq and resolves once its DHCP and TFTP sockets are bound. */
  async start(): Promise<void> {
    const o = this.options;
    if (o.tuned) {
      const cidr = o.ipv6Address ?? DNSMASQ_PEER_DEFAULTS.ipv6Address;
      if (!(await o.lab.bridgeAddresses()).includes(cidr)) {
        await o.lab.addAddress(cidr);
        this.#addedAddress = true;
      }
    }
    const daemon = new DaemonProcess('dnsmasq', o.lab.spawn(o.binary ?? DNSMASQ_PEER_DEFAULTS.binary, this.args(), { stdio: ['ignore', 'pipe', 'pipe'] }));
    this.#daemon = daemon;
    try {
      await daemon.waitReady(() => /TFTP root is/.test(daemon.output), o.readyTimeoutMs ?? DNSMASQ_PEER_DEFAULTS.readyTimeoutMs);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** dnsmasq's log so far (DHCP and TFTP lines). */
  get output(): string {
    return this.#daemon?.output ?? '';
  }

  /** Stops dnsmasq and removes the IPv6 address it needed. Idempotent. */
  async stop(): Promise<void> {
    await this.#daemon?.stop('SIGTERM', 2000);
    this.#daemon = undefined;
    if (this.#addedAddress) {
      await this.options.lab.removeAddress(this.options.ipv6Address ?? DNSMASQ_PEER_DEFAULTS.ipv6Address).catch(() => undefined);
      this.#addedAddress = false;
    }
  }

  /** Restarts dnsmasq with an empty lease file: the next client is new to it. */
  async forgetLeases(): Promise<void> {
    await this.stop();
    await rm(this.leaseFile, { force: true });
    await this.start();
  }
}
