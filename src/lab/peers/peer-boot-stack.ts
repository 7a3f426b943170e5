import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeDemoDisk } from '../../store/demo-disk.js';
import type { BootStack } from '../boot-stack.js';
import type { Lab } from '../lab.js';
import { DNSMASQ_PEER_DEFAULTS, DnsmasqPeer } from './dnsmasq-peer.js';
import { TgtPeer } from './tgt-peer.js';

/** Default target name of the peer's demo disk. */
export const PEER_DEMO_IQN = 'iqn.2026-11.io.diskless.lab:demo';

/** Options of the dnsmasq + tgt peer stack. */
export interface PeerBootStackOptions {
  readonly lab: Lab;
  /** Scratch directory: demo disk, TFTP root, lease file. Created if missing. */
  readonly workDir: string;
  /** dnsmasq as shipped (false) or tuned (true); see DnsmasqPeer. */
  readonly tuned: boolean;
  /** tgtd control port (`-C`); each concurrent tgtd on the machine needs its own. */
  readonly tgtControlPort: number;
  readonly iqn?: string;
  /** Directory of Debian's ipxe package, for undionly.kpxe. Default /usr/lib/ipxe. */
  readonly ipxeDir?: string;
}

/**
 * The peer the boot benchmark compares against: dnsmasq (DHCP + TFTP, RA when tuned) and tgt
 * serving the demo disk on LUN 1. Every MAC gets the same script, which sanboots the disk.
 */
export class PeerBootStack implements BootStack {
  readonly name: string;
  readonly dnsmasq: DnsmasqPeer;
  readonly tgt: TgtPeer;
  readonly #options: PeerBootStackOptions;

  constructor(options: PeerBootStackOptions) {
    this.#options = options;
    this.name = `dnsmasq+tgt (${options.tuned ? 'tuned' : 'as shipped'})`;
    this.dnsmasq = new DnsmasqPeer({ lab: options.lab, tftpRoot: this.tftpRoot, workDir: options.workDir, tuned: options.tuned });
    this.tgt = new TgtPeer({ lab: options.lab, controlPort: options.tgtControlPort, iqn: options.iqn ?? PEER_DEMO_IQN, backingFile: this.diskPath });
  }

  get tftpRoot(): string {
    return join(this.#options.workDir, 'tftp');
  }

  get diskPath(): string {
    return join(this.#options.workDir, 'demo.img');
  }

  /** The iPXE script every client gets. */
  bootScript(): string {
    return `#!ipxe\nsanboot ${this.tgt.sanUri}\n`;
  }

  async start(): Promise<void> {
    await mkdir(this.tftpRoot, { recursive: true });
    await writeDemoDisk(this.diskPath);
    const bios = DNSMASQ_PEER_DEFAULTS.biosBootFile;
    await copyFile(join(this.#options.ipxeDir ?? '/usr/lib/ipxe', bios), join(this.tftpRoot, bios));
    await writeFile(join(this.tftpRoot, DNSMASQ_PEER_DEFAULTS.ipxeScript), this.bootScript());
    await this.tgt.start();
    try {
      await this.dnsmasq.start();
    } catch (err) {
      await this.tgt.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await this.dnsmasq.stop();
    await this.tgt.stop();
  }

  forgetLeases(): Promise<void> {
    return this.dnsmasq.forgetLeases();
  }
}
