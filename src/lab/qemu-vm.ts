import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { DisklessError } from '../errors/index.js';
import type { ConsoleChunk } from './console-transcript.js';

/** Defaults of a QemuVm (LAB.md §2: TCG is reliable here, KVM hangs after the option ROM). */
export const QEMU_VM_DEFAULTS = {
  qemuBinary: 'qemu-system-x86_64',
  accel: 'tcg',
  memoryMb: 256,
  /** e1000's option ROM is iPXE (Debian ipxe-qemu): the VM PXE boots with real iPXE. */
  nic: 'e1000',
  /** NIC of a `nativePxe` VM: OVMF drives it with its own VirtioNetDxe, no option ROM needed. */
  nativePxeNic: 'virtio-net-pci',
  ovmfPath: '/usr/share/ovmf/OVMF.fd',
} as const;

/** Options of one diskless VM. */
export interface QemuVmOptions {
  /** Network namespace the tap lives in; QEMU runs inside it (`ip netns exec`). */
  readonly namespace: string;
  /** Tap interface inside the namespace (see Lab.addTap). */
  readonly tap: string;
  /** The NIC's MAC, `xx:xx:xx:xx:xx:xx`. */
  readonly mac: string;
  /** Boot with OVMF (UEFI) instead of SeaBIOS. Needs Debian's `ovmf`. */
  readonly uefi?: boolean;
  readonly ovmfPath?: string;
  /**
   * Boot with the firmware's own PXE client instead of iPXE: the NIC gets no option ROM
   * (`romfile=` empty) and defaults to virtio-net-pci, so OVMF's VirtioNetDxe and EDK2's PXE
   * client do DHCP (option 93 arch 7) and fetch the boot file over TFTP. Needs `uefi`: SeaBIOS
   * has no PXE client of its own.
   */
  readonly nativePxe?: boolean;
  readonly memoryMb?: number;
  readonly nic?: string;
  readonly qemuBinary?: string;
  /** Appended to the command line (e.g. `-drive ...`). */
  readonly extraArgs?: readonly string[];
  /** Called with every chunk of serial console output, in order, as it arrives. */
  readonly onConsole?: (chunk: ConsoleChunk) => void;
  /** Called once when QEMU exits, whatever the reason. */
  readonly onExit?: (exit: VmExit) => void;
}

/** How the QEMU process ended. */
export interface VmExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Milliseconds since power-on. */
  readonly atMs: number;
  /** QEMU's stderr (its own complaints: a missing tap, a bad option). */
  readonly stderr: string;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/**
 * One QEMU VM that network-boots through SeaBIOS (or OVMF) and the NIC's iPXE ROM (or, with
 * `nativePxe`, OVMF's own PXE client on a NIC without option ROM), with the
 * serial console on stdout (`-nographic`) read as a stream. Power-on is the moment `start`
 * spawns QEMU; console chunk times are ms since then. QEMU is tied to this process (SIGKILL if
 * it dies, via setpriv --pdeathsig) and `stop` kills it, so a VM never outlives its owner.
 * `-no-reboot` makes QEMU exit instead of looping when the guest resets.
 */
export class QemuVm {
  readonly options: QemuVmOptions;
  readonly #chunks: ConsoleChunk[] = [];
  #child: ChildProcess | undefined;
  #t0 = 0;
  #stderr = '';
  #exit: VmExit | undefined;
  #exited: Promise<VmExit> | undefined;

  constructor(options: QemuVmOptions) {
    if (!MAC_RE.test(options.mac)) {
      throw new DisklessError('LAB_INVALID_OPTION', `VM option mac: value ${JSON.stringify(options.mac)} is not allowed; allowed: six hex pairs separated by colons`, { field: 'mac', value: options.mac });
    }
    const mem = options.memoryMb ?? QEMU_VM_DEFAULTS.memoryMb;
    if (!Number.isInteger(mem) || mem < 32 || mem > 65536) {
      throw new DisklessError('LAB_INVALID_OPTION', `VM option memoryMb: value ${mem} is not allowed; allowed: 32..65536`, { field: 'memoryMb', value: mem });
    }
    if (options.nativePxe && !options.uefi) {
      throw new DisklessError('LAB_INVALID_OPTION', 'VM option nativePxe: value true is not allowed without uefi; allowed: nativePxe with uefi (SeaBIOS has no PXE client without a NIC option ROM)', {
        field: 'nativePxe',
        value: true,
        allowed: 'with uefi: true',
      });
    }
    this.options = options;
  }

  /** The QEMU argument list (after the binary). */
  args(): string[] {
    const o = this.options;
    const args = [
      '-accel', QEMU_VM_DEFAULTS.accel,
      '-m', String(o.memoryMb ?? QEMU_VM_DEFAULTS.memoryMb),
      '-nographic',
      '-no-reboot',
      '-boot', 'n',
      '-netdev', `tap,id=n0,ifname=${o.tap},script=no,downscript=no`,
      '-device', this.#nicDevice(),
    ];
    if (o.uefi) args.push('-bios', o.ovmfPath ?? QEMU_VM_DEFAULTS.ovmfPath);
    return args.concat(o.extraArgs ?? []);
  }

  /** The `-device` value of the NIC; `romfile=` (no option ROM) for firmware PXE. */
  #nicDevice(): string {
    const o = this.options;
    const nic = o.nic ?? (o.nativePxe ? QEMU_VM_DEFAULTS.nativePxeNic : QEMU_VM_DEFAULTS.nic);
    return `${nic},netdev=n0,mac=${o.mac.toLowerCase()}${o.nativePxe ? ',romfile=' : ''}`;
  }

  /** Powers the VM on. Throws LAB_TOOL_MISSING when UEFI is asked for and OVMF is absent. */
  start(): void {
    if (this.#child) throw new DisklessError('LAB_INVALID_OPTION', 'VM already started', { field: 'start' });
    const o = this.options;
    const ovmf = o.ovmfPath ?? QEMU_VM_DEFAULTS.ovmfPath;
    if (o.uefi && !existsSync(ovmf)) {
      throw new DisklessError('LAB_TOOL_MISSING', `UEFI boot needs ${ovmf}: install Debian package ovmf`, { path: ovmf, package: 'ovmf' });
    }
    const argv = ['netns', 'exec', o.namespace, 'setpriv', '--pdeathsig', 'KILL', o.qemuBinary ?? QEMU_VM_DEFAULTS.qemuBinary, ...this.args()];
    this.#t0 = performance.now();
    const child = spawn('ip', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    child.stdout!.setEncoding('latin1');
    child.stdout!.on('data', (text: string) => {
      const chunk = { atMs: Math.round(performance.now() - this.#t0), text };
      this.#chunks.push(chunk);
      o.onConsole?.(chunk);
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      if (this.#stderr.length < 64 * 1024) this.#stderr += text;
    });
    this.#exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.#exit = { code, signal, atMs: Math.round(performance.now() - this.#t0), stderr: this.#stderr.trim() };
        o.onExit?.(this.#exit);
        resolve(this.#exit);
      });
      child.once('error', () => undefined);
    });
  }

  /** Milliseconds since power-on (0 before start). */
  now(): number {
    return this.#child ? Math.round(performance.now() - this.#t0) : 0;
  }

  /** The QEMU process id (the `ip netns exec` wrapper execs into it), once started. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Every console chunk received so far. */
  get transcript(): readonly ConsoleChunk[] {
    return this.#chunks;
  }

  /** How QEMU ended, once it has. */
  get exit(): VmExit | undefined {
    return this.#exit;
  }

  /** Resolves when QEMU has exited (started VMs only). */
  exited(): Promise<VmExit> {
    if (!this.#exited) return Promise.reject(new DisklessError('LAB_INVALID_OPTION', 'VM was never started', { field: 'start' }));
    return this.#exited;
  }

  /** Kills QEMU (SIGKILL: the guest has nothing to save) and waits for it. Safe to call twice. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || this.#exit) return;
    child.kill('SIGKILL');
    await this.#exited;
  }
}
