import { createHash } from 'node:crypto';
import { execFile, type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DisklessError } from '../errors/index.js';
import { createNamespace, deleteNamespace, ipIn, namespaceExists } from './netns.js';
import { processAlive } from '../store/process-alive.js';

const execFileP = promisify(execFile);

/** Defaults of a Lab; `diskless lab` uses them unless told otherwise. */
export const LAB_DEFAULTS = {
  namespace: 'diskless-lab',
  bridge: 'br0',
  address: '10.77.0.1',
  prefixLength: 24,
  tapPrefix: 'tap',
  stateRoot: '/run/diskless/lab',
  /** How long `down` waits after SIGTERM before SIGKILL. */
  stopGraceMs: 3000,
} as const;

/** Options of a Lab: one network namespace holding one boot segment. */
export interface LabOptions {
  /** Network namespace name (<= 15 chars is not required, but keep it short). Default `diskless-lab`. */
  readonly namespace?: string;
  /** Bridge inside the namespace that every VM tap joins. Default `br0`. */
  readonly bridge?: string;
  /** The server's IPv4 address on the bridge (config `server.address`). Default 10.77.0.1. */
  readonly address?: string;
  /** Prefix length of the segment (from config `dhcp.subnet`). Default 24. */
  readonly prefixLength?: number;
  /** Extra addresses for the bridge in CIDR form, e.g. `fd00:77::1/64` for a peer sending RAs with a prefix. */
  readonly extraAddresses?: readonly string[];
  /** Tap names are `<tapPrefix><n>`. Default `tap`. */
  readonly tapPrefix?: string;
  /** Where pid files and logs live. Default `/run/diskless/lab/<namespace>`. */
  readonly stateDir?: string;
  /** Grace period between SIGTERM and SIGKILL when stopping processes. Default 3000 ms. */
  readonly stopGraceMs?: number;
}

/** What `Lab.status` reports. */
export interface LabStatus {
  readonly namespace: string;
  readonly up: boolean;
  readonly bridge?: { readonly name: string; readonly mac: string; readonly state: string; readonly addresses: readonly string[] };
  readonly taps: readonly { readonly name: string; readonly state: string }[];
  /** Every process whose network namespace is the lab's, with its command line. */
  readonly processes: readonly { readonly pid: number; readonly command: string }[];
  /** Processes started through `spawnDetached`, by name, with whether each is still alive. */
  readonly recorded: readonly { readonly name: string; readonly pid: number; readonly alive: boolean }[];
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$/;

/**
 * The built-in lab's network: a namespace with a bridge at the server's address, a stable
 * link-local IPv6 address on it (from a fixed MAC, present before any VM gives the bridge a
 * carrier, DAD off so it is usable at once as an RA source), and taps for VMs. Processes run inside with `spawn`/
 * `spawnDetached`; `down` stops every process in the namespace and deletes it. Needs root.
 * Several processes may share one lab (`lab up` in one, `lab boot` in another): all state is in
 * the kernel and in `stateDir`, none in this object.
 */
export class Lab {
  readonly namespace: string;
  readonly bridge: string;
  readonly address: string;
  readonly prefixLength: number;
  readonly extraAddresses: readonly string[];
  readonly tapPrefix: string;
  readonly stateDir: string;
  readonly stopGraceMs: number;

  constructor(options: LabOptions = {}) {
    this.namespace = options.namespace ?? LAB_DEFAULTS.namespace;
    this.bridge = options.bridge ?? LAB_DEFAULTS.bridge;
    this.address = options.address ?? LAB_DEFAULTS.address;
    this.prefixLength = options.prefixLength ?? LAB_DEFAULTS.prefixLength;
    this.extraAddresses = options.extraAddresses ?? [];
    this.tapPrefix = options.tapPrefix ?? LAB_DEFAULTS.tapPrefix;
    this.stateDir = options.stateDir ?? join(LAB_DEFAULTS.stateRoot, this.namespace);
    this.stopGraceMs = options.stopGraceMs ?? LAB_DEFAULTS.stopGraceMs;
    checkName('namespace', this.namespace);
    checkName('bridge', this.bridge);
    if (!/^[a-zA-Z][a-zA-Z0-9_-]{0,9}$/.test(this.tapPrefix)) invalidOption('tapPrefix', this.tapPrefix, 'a letter then up to 9 letters, digits, _ or -');
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(this.address)) invalidOption('address', this.address, 'an IPv4 address');
    if (!Number.isInteger(this.prefixLength) || this.prefixLength < 8 || this.prefixLength > 30) invalidOption('prefixLength', this.prefixLength, 'an integer 8..30');
  }

  /** The bridge's MAC: locally administered, derived from the namespace name, stable across runs. */
  get bridgeMac(): string {
    const h = createHash('sha256').update(this.namespace).digest();
    return ['02', ...[0, 1, 2, 3].map((i) => h[i]!.toString(16).padStart(2, '0')), '01'].join(':');
  }

  /** The bridge's IPv6 link-local address: EUI-64 of `bridgeMac` (RFC 4291 §2.5.1, appendix A). */
  get linkLocal(): string {
    const b = this.bridgeMac.split(':').map((x) => parseInt(x, 16));
    const eui = [b[0]! ^ 0x02, b[1]!, b[2]!, 0xff, 0xfe, b[3]!, b[4]!, b[5]!];
    const groups = [0, 2, 4, 6].map((i) => ((eui[i]! << 8) | eui[i + 1]!).toString(16));
    return `fe80::${groups.join(':')}`;
  }

  /** True when the namespace exists. */
  async isUp(): Promise<boolean> {
    return namespaceExists(this.namespace);
  }

  /**
   * Creates the namespace, bridge and addresses. Idempotent: a lab that is already up is left
   * as it is (its missing extra addresses are added). Throws LAB_COMMAND_FAILED if iproute2 refuses.
   */
  async up(): Promise<void> {
    await mkdir(this.stateDir, { recursive: true });
    if (!(await this.isUp())) {
      await run('create namespace', () => createNamespace(this.namespace));
      try {
        await this.#ip('link', 'add', this.bridge, 'address', this.bridgeMac, 'type', 'bridge');
        // A bridge has no carrier until a running VM's tap joins it, and the kernel only then
        // generates a link-local address (and runs DAD on it). Servers start before any VM and
        // an RA must come from a link-local source, so the lab adds it itself: fixed, no DAD.
        await this.#ip('link', 'set', this.bridge, 'addrgenmode', 'none');
        await this.exec('sysctl', ['-q', '-w', `net.ipv6.conf.${this.bridge}.accept_dad=0`]);
        await this.#ip('addr', 'add', `${this.linkLocal}/64`, 'dev', this.bridge, 'nodad');
        await this.#ip('addr', 'add', `${this.address}/${this.prefixLength}`, 'dev', this.bridge);
        await this.#ip('link', 'set', this.bridge, 'up');
      } catch (err) {
        await deleteNamespace(this.namespace).catch(() => undefined);
        throw err;
      }
    }
    for (const cidr of this.extraAddresses) await this.addAddress(cidr);
    await writeFile(join(this.stateDir, 'lab.json'), JSON.stringify({ namespace: this.namespace, bridge: this.bridge, address: this.address, prefixLength: this.prefixLength }) + '\n');
  }

  /** Adds an address (CIDR) to the bridge unless present; IPv6 addresses skip DAD. */
  async addAddress(cidr: string): Promise<void> {
    const have = await this.bridgeAddresses();
    if (have.includes(cidr)) return;
    await this.#ip('addr', 'add', cidr, 'dev', this.bridge, ...(cidr.includes(':') ? ['nodad'] : []));
  }

  /** Removes an address (CIDR) from the bridge if present. */
  async removeAddress(cidr: string): Promise<void> {
    const have = await this.bridgeAddresses();
    if (have.includes(cidr)) await this.#ip('addr', 'del', cidr, 'dev', this.bridge);
  }

  /** The bridge's addresses in CIDR form, IPv4 and IPv6 (link-local included). */
  async bridgeAddresses(): Promise<string[]> {
    const out = await this.#ip('-j', 'addr', 'show', 'dev', this.bridge);
    const parsed = JSON.parse(out) as Array<{ addr_info?: Array<{ local: string; prefixlen: number }> }>;
    return (parsed[0]?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
  }

  /**
   * Creates a tap `<tapPrefix><n>` (lowest free n) on the bridge and returns its name. QEMU
   * running in the namespace opens it by name. Safe against a concurrent `addTap` in another
   * process: a name taken meanwhile makes it try the next one.
   */
  async addTap(): Promise<string> {
    await this.#requireUp();
    for (let n = 0; n < 256; n++) {
      const name = `${this.tapPrefix}${n}`;
      if (await this.#linkExists(name)) continue;
      try {
        await this.#ip('tuntap', 'add', 'dev', name, 'mode', 'tap');
      } catch {
        continue;
      }
      await this.#ip('link', 'set', name, 'master', this.bridge);
      await this.#ip('link', 'set', name, 'up');
      return name;
    }
    throw new DisklessError('LAB_INVALID_OPTION', `cannot add a tap: ${this.tapPrefix}0..255 are all taken in ${this.namespace}`, { field: 'tapPrefix', value: this.tapPrefix });
  }

  /** Deletes a tap; a tap already gone is not an error. */
  async removeTap(name: string): Promise<void> {
    if ((await this.isUp()) && (await this.#linkExists(name))) await this.#ip('link', 'del', name);
  }

  /**
   * Spawns `command` inside the namespace, tied to this process: it gets SIGKILL if this
   * process dies (PR_SET_PDEATHSIG via setpriv), so a crashed test or bench leaves nothing
   * running. Stop it with `stopProcess`.
   */
  spawn(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.namespace, 'setpriv', '--pdeathsig', 'KILL', command, ...args], options);
  }

  /**
   * Spawns a long-lived process inside the namespace that outlives this one (`lab up` starting
   * the server), with stdout and stderr appended to `<stateDir>/<name>.log` and its pid in
   * `<stateDir>/<name>.pid`. Returns the pid. `down` stops it.
   */
  async spawnDetached(name: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
    checkName('process name', name);
    await this.#requireUp();
    const logFd = openSync(join(this.stateDir, `${name}.log`), 'a');
    try {
      const child = spawn('ip', ['netns', 'exec', this.namespace, command, ...args], { detached: true, stdio: ['ignore', logFd, logFd], env });
      if (child.pid === undefined) throw new DisklessError('LAB_TOOL_MISSING', `cannot start ${command} in ${this.namespace}`, { command });
      child.unref();
      await writeFile(join(this.stateDir, `${name}.pid`), `${child.pid}\n`);
      return child.pid;
    } finally {
      closeSync(logFd);
    }
  }

  /** Path of the log file `spawnDetached(name, ...)` writes. */
  logPath(name: string): string {
    return join(this.stateDir, `${name}.log`);
  }

  /** Runs a command inside the namespace to completion; LAB_COMMAND_FAILED with its stderr on failure. */
  async exec(command: string, args: readonly string[], timeoutMs = 30_000): Promise<string> {
    try {
      const { stdout } = await execFileP('ip', ['netns', 'exec', this.namespace, command, ...args], { encoding: 'utf8', timeout: timeoutMs });
      return stdout;
    } catch (err) {
      throw commandFailed(`${command} ${args.join(' ')}`, err);
    }
  }

  /** Pids of every process in the namespace (`ip netns pids`). */
  async pids(): Promise<number[]> {
    if (!(await this.isUp())) return [];
    const { stdout } = await execFileP('ip', ['netns', 'pids', this.namespace], { encoding: 'utf8' });
    return stdout
      .split('\n')
      .filter((l) => /^\d+$/.test(l.trim()))
      .map(Number);
  }

  /**
   * Stops every process in the namespace (SIGTERM, then SIGKILL after `stopGraceMs`), deletes
   * the namespace (taps and bridge go with it) and the state directory. Idempotent: a lab that
   * is down already is fine.
   */
  async down(): Promise<void> {
    const recorded = await this.#recordedPids();
    await stopPids([...new Set([...(await this.pids()), ...recorded.map((r) => r.pid)])], this.stopGraceMs);
    await run('delete namespace', () => deleteNamespace(this.namespace));
    await rm(this.stateDir, { recursive: true, force: true });
  }

  /** A snapshot of the lab: namespace, bridge, taps, processes. */
  async status(): Promise<LabStatus> {
    const recorded = (await this.#recordedPids()).map((r) => ({ ...r, alive: processAlive(r.pid) }));
    if (!(await this.isUp())) return { namespace: this.namespace, up: false, taps: [], processes: [], recorded };
    const links = JSON.parse(await this.#ip('-j', 'link', 'show')) as Array<{ ifname: string; address?: string; operstate?: string; master?: string; linkinfo?: unknown }>;
    const br = links.find((l) => l.ifname === this.bridge);
    const processes = await Promise.all(
      (await this.pids()).map(async (pid) => ({ pid, command: (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ').trim() })),
    );
    return {
      namespace: this.namespace,
      up: true,
      ...(br ? { bridge: { name: br.ifname, mac: br.address ?? '', state: br.operstate ?? 'UNKNOWN', addresses: await this.bridgeAddresses() } } : {}),
      taps: links.filter((l) => l.master === this.bridge).map((l) => ({ name: l.ifname, state: l.operstate ?? 'UNKNOWN' })),
      processes,
      recorded,
    };
  }

  async #recordedPids(): Promise<Array<{ name: string; pid: number }>> {
    const files = await readdir(this.stateDir).catch(() => [] as string[]);
    const out: Array<{ name: string; pid: number }> = [];
    for (const f of files.filter((x) => x.endsWith('.pid'))) {
      const pid = Number((await readFile(join(this.stateDir, f), 'utf8')).trim());
      if (Number.isInteger(pid) && pid > 1) out.push({ name: f.slice(0, -4), pid });
    }
    return out;
  }

  async #linkExists(name: string): Promise<boolean> {
    try {
      await ipIn(this.namespace, 'link', 'show', 'dev', name);
      return true;
    } catch {
      return false;
    }
  }

  async #requireUp(): Promise<void> {
    if (!(await this.isUp())) throw new DisklessError('LAB_NOT_UP', `lab namespace ${this.namespace} does not exist: run \`diskless lab up\` first`, { namespace: this.namespace });
  }

  async #ip(...args: string[]): Promise<string> {
    try {
      return await ipIn(this.namespace, ...args);
    } catch (err) {
      throw commandFailed(`ip -n ${this.namespace} ${args.join(' ')}`, err);
    }
  }
}

/** SIGTERM each pid, wait up to `graceMs`, SIGKILL the survivors and wait until they are gone. */
export async function stopPids(pids: readonly number[], graceMs: number): Promise<void> {
  const signal = (pid: number, sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  };
  const live = () => pids.filter(processAlive);
  for (const pid of live()) signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (live().length > 0 && Date.now() < deadline) await sleep(50);
  for (const pid of live()) signal(pid, 'SIGKILL');
  const hard = Date.now() + 5000;
  while (live().length > 0 && Date.now() < hard) await sleep(20);
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function checkName(field: string, value: string): void {
  if (!NAME_RE.test(value)) invalidOption(field, value, '1..15 letters, digits, _ . - starting with a letter or digit');
}

function invalidOption(field: string, value: unknown, allowed: string): never {
  throw new DisklessError('LAB_INVALID_OPTION', `lab option ${field}: value ${JSON.stringify(value)} is not allowed; allowed: ${allowed}`, { field, value, allowed });
}

function commandFailed(what: string, err: unknown): DisklessError {
  const e = err as { stderr?: string; code?: number | string; message?: string };
  const stderr = (e.stderr ?? '').trim();
  return new DisklessError('LAB_COMMAND_FAILED', `${what} failed: ${stderr || e.message || String(err)}`, { command: what, stderr, exitCode: e.code }, { cause: err });
}

async function run<T>(what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw commandFailed(what, err);
  }
}
