import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { DisklessError } from '../../errors/index.js';
import type { Lab } from '../lab.js';
import { DaemonProcess } from './daemon-process.js';

const execFileP = promisify(execFile);

/** Defaults of the tgt peer (LAB.md §5). */
export const TGT_PEER_DEFAULTS = {
  /** tgt's controller takes LUN 0; the disk goes on LUN 1. */
  lun: 1,
  tid: 1,
  port: 3260,
  readyTimeoutMs: 10_000,
} as const;

/** Options of a tgt peer inside a lab. */
export interface TgtPeerOptions {
  readonly lab: Lab;
  /**
   * tgtd's control port (`tgtd -C N`, `tgtadm -C N`): its control socket
   * /var/run/tgtd/socket.N is machine-wide, so each concurrent tgtd needs its own N.
   */
  readonly controlPort: number;
  /** Target name, e.g. `iqn.2026-11.io.diskless.lab:demo`. */
  readonly iqn: string;
  /** The disk image served on LUN 1. */
  readonly backingFile: string;
  /** Portal address; default the lab's address. */
  readonly address?: string;
  readonly port?: number;
  readonly readyTimeoutMs?: number;
}

/**
 * tgt (Linux user-space iSCSI target) as the peer target: one target, the disk on LUN 1, open to
 * every initiator. tgtd runs in the foreground in the lab namespace; it ignores SIGTERM while
 * targets exist, so `stop` deletes the target first and SIGKILLs its own pid if it lingers.
 */
export class TgtPeer {
  readonly options: TgtPeerOptions;
  #daemon: DaemonProcess | undefined;

  constructor(options: TgtPeerOptions) {
    if (!Number.isInteger(options.controlPort) || options.controlPort < 0 || options.controlPort > 65535) {
      throw new DisklessError('LAB_INVALID_OPTION', `tgt option controlPort: value ${options.controlPort} is not allowed; allowed: 0..65535`, { field: 'controlPort', value: options.controlPort });
    }
    this.options = options;
  }

  /** The SAN URI iPXE sanboots: `iscsi:<ip>::<port>:<lun>:<iqn>`. */
  get sanUri(): string {
    const o = this.options;
    return `iscsi:${o.address ?? o.lab.address}::${o.port ?? TGT_PEER_DEFAULTS.port}:${TGT_PEER_DEFAULTS.lun}:${o.iqn}`;
  }

  /** Starts tgtd, creates the target and its LUN, binds it to all initiators. */
  async start(): Promise<void> {
    const o = this.options;
    const portal = `${o.address ?? o.lab.address}:${o.port ?? TGT_PEER_DEFAULTS.port}`;
    const daemon = new DaemonProcess('tgtd', o.lab.spawn('tgtd', ['-f', '-C', String(o.controlPort), '--iscsi', `portal=${portal}`], { stdio: ['ignore', 'pipe', 'pipe'] }));
    this.#daemon = daemon;
    try {
      await daemon.waitReady(() => this.#adm(['--op', 'show', '--mode', 'target']).then(() => true, () => false), o.readyTimeoutMs ?? TGT_PEER_DEFAULTS.readyTimeoutMs);
      const tid = String(TGT_PEER_DEFAULTS.tid);
      await this.#adm(['--lld', 'iscsi', '--op', 'new', '--mode', 'target', '--tid', tid, '-T', o.iqn]);
      await this.#adm(['--lld', 'iscsi', '--op', 'new', '--mode', 'logicalunit', '--tid', tid, '--lun', String(TGT_PEER_DEFAULTS.lun), '-b', o.backingFile]);
      await this.#adm(['--lld', 'iscsi', '--op', 'bind', '--mode', 'target', '--tid', tid, '-I', 'ALL']);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Deletes the target and stops tgtd. Idempotent. */
  async stop(): Promise<void> {
    const daemon = this.#daemon;
    if (!daemon) return;
    this.#daemon = undefined;
    if (!daemon.exited) {
      await this.#adm(['--lld', 'iscsi', '--op', 'delete', '--mode', 'target', '--tid', String(TGT_PEER_DEFAULTS.tid), '--force']).catch(() => undefined);
    }
    await daemon.stop('SIGTERM', 1000);
  }

  async #adm(args: string[]): Promise<string> {
    try {
      const { stdout } = await execFileP('tgtadm', ['-C', String(this.options.controlPort), ...args], { encoding: 'utf8', timeout: 10_000 });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; message?: string };
      throw new DisklessError('LAB_COMMAND_FAILED', `tgtadm ${args.join(' ')} failed: ${(e.stderr ?? e.message ?? '').trim()}`, { command: 'tgtadm', args, stderr: e.stderr ?? '' }, { cause: err });
    }
  }
}
