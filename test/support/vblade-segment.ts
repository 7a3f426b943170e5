/**
 * A real vblade on a veth pair, for the AoE initiator's tests: a fresh network namespace
 * `aoeini-<pid>-<n>` holding the far end (vblade runs there with `ip netns exec`), and the near
 * end either in this process's namespace (the test's own raw socket) or, with
 * `nearInNamespace`, in the same namespace (for a CLI spawned with `ip netns exec`). The backing
 * file is filled with test/support/block-pattern's pattern of `seed`. Both kernels' IPv6 is off
 * on the pair, so the only frames on it are AoE. Needs root and Debian's `vblade`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNamespace, createVethPair, deleteNamespace, execIn, ip, ipIn } from '../../src/lab/netns.js';
import { interfaceInfo } from '../../src/net/open-raw-socket.js';
import { pattern } from './block-pattern.js';

export interface VbladeOptions {
  readonly shelf: number;
  readonly slot: number;
  /** vblade -m: the only MACs it answers (lower-case hex with colons). */
  readonly mask?: readonly string[];
  /** vblade -b: its advertised Buffer Count (default 16). */
  readonly bufferCount?: number;
  /** Another backing file than the segment's (for a second target). */
  readonly file?: string;
}

export interface VbladeSegment {
  readonly ns: string;
  /** The near end: in this process's namespace, or in `ns` with `nearInNamespace`. */
  readonly nearIf: string;
  /** The far end, in `ns`, where vblade listens. */
  readonly farIf: string;
  readonly nearMac: string;
  readonly farMac: string;
  /** The backing file (sizeBytes of pattern `seed`). */
  readonly file: string;
  /** A scratch directory removed by `stop`. */
  readonly dir: string;
  /** Starts one more vblade in `ns` on the far end; resolves once it has opened its socket. */
  startVblade(options: VbladeOptions): Promise<ChildProcess>;
  /** Runs `command args` in `ns` and returns stdout. */
  exec(command: string, args: readonly string[]): Promise<string>;
  /** Kills every vblade, deletes the namespace (and the pair with it) and the directory. Safe twice. */
  stop(): Promise<void>;
}

let counter = 0;

/** Creates the namespace, the pair (MTU `mtu` on both ends) and the backing file; starts no vblade. */
export async function createVbladeSegment(o: { mtu?: number; sizeBytes: number; seed: number; nearInNamespace?: boolean }): Promise<VbladeSegment> {
  const id = `${process.pid % 100000}-${counter++ % 100}`;
  const ns = `aoeini-${id}`;
  const nearIf = `aoeini${id}a`;
  const farIf = `aoeini${id}b`;
  const nearNs = o.nearInNamespace ? ns : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'aoeini-'));
  const file = join(dir, 'disk.img');
  writeFileSync(file, pattern(0, o.sizeBytes, o.seed));
  const vblades: ChildProcess[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(
      vblades.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    await deleteNamespace(ns).catch(() => undefined);
    if (!nearNs) await ip('link', 'del', nearIf).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await deleteNamespace(ns);
    await ip('link', 'del', nearIf).catch(() => undefined);
    await createNamespace(ns);
    await createVethPair(nearIf, farIf, nearNs, ns);
    const mtu = String(o.mtu ?? 1500);
    const nearIp = (...args: string[]) => (nearNs ? ipIn(nearNs, ...args) : ip(...args));
    await nearIp('link', 'set', nearIf, 'mtu', mtu);
    await ipIn(ns, 'link', 'set', farIf, 'mtu', mtu);
    await execIn(ns, 'sysctl', ['-qw', `net.ipv6.conf.${farIf}.disable_ipv6=1`]);
    if (nearNs) await execIn(ns, 'sysctl', ['-qw', `net.ipv6.conf.${nearIf}.disable_ipv6=1`]);
    else writeFileSync(`/proc/sys/net/ipv6/conf/${nearIf}/disable_ipv6`, '1');
    const macOf = async (inNs: string | undefined, ifname: string) =>
      inNs ? /link\/ether ([0-9a-f:]{17})/.exec(await ipIn(inNs, 'link', 'show', ifname))![1]! : [...interfaceInfo(ifname).mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
    const nearMac = await macOf(nearNs, nearIf);
    const farMac = await macOf(ns, farIf);
    return {
      ns,
      nearIf,
      farIf,
      nearMac,
      farMac,
      file,
      dir,
      exec: (command, args) => execIn(ns, command, args),
      stop,
      startVblade: (v) => {
        const args = [...(v.bufferCount !== undefined ? ['-b', String(v.bufferCount)] : []), ...(v.mask?.length ? ['-m', v.mask.join(',')] : []), String(v.shelf), String(v.slot), farIf, v.file ?? file];
        const child = spawn('ip', ['netns', 'exec', ns, 'vblade', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        vblades.push(child);
        return new Promise<ChildProcess>((resolve, reject) => {
          let out = '';
          let err = '';
          const timer = setTimeout(() => reject(new Error(`vblade ${args.join(' ')} did not start in 10 s: ${out} ${err}`)), 10_000);
          child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
          // "pid N: eS.L, X sectors O_RDWR" is printed after the socket is open.
          child.stdout!.on('data', (d: Buffer) => {
            out += d.toString();
            if (/sectors/.test(out)) {
              clearTimeout(timer);
              resolve(child);
            }
          });
          child.once('exit', (code) => {
            clearTimeout(timer);
            reject(new Error(`vblade ${args.join(' ')} exited with ${code}: ${out} ${err}`));
          });
          child.once('error', reject);
        });
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
