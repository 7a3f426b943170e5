import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/**
 * Thin helpers over iproute2 for the lab and for tests that need a real segment: network
 * namespaces, veth pairs, taps and bridges. Needs root. Each call is one `ip` process (~5 ms).
 */
export async function ip(...args: string[]): Promise<string> {
  const { stdout } = await execFileP('ip', args, { encoding: 'utf8' });
  return stdout;
}

/** `ip` run inside namespace `ns`. */
export async function ipIn(ns: string, ...args: string[]): Promise<string> {
  return ip('-n', ns, ...args);
}

export async function namespaceExists(ns: string): Promise<boolean> {
  const out = await ip('netns', 'list');
  return out.split('\n').some((l) => l.split(' ')[0] === ns);
}

/** Creates `ns` with loopback up. Throws if it exists. */
export async function createNamespace(ns: string): Promise<void> {
  await ip('netns', 'add', ns);
  await ipIn(ns, 'link', 'set', 'lo', 'up');
}

/** Deletes `ns` if it exists (its interfaces go with it). Processes still inside keep running: stop them first. */
export async function deleteNamespace(ns: string): Promise<void> {
  if (await namespaceExists(ns)) await ip('netns', 'del', ns);
}

/**
 * A veth pair: `a` stays where it is created (`nsA`, or the current namespace when
 * undefined), `b` moves into `nsB` (or stays). Both are set up.
 */
export async function createVethPair(a: string, b: string, nsA?: string, nsB?: string): Promise<void> {
  const run = (ns: string | undefined, ...args: string[]) => (ns ? ipIn(ns, ...args) : ip(...args));
  await run(nsA, 'link', 'add', a, 'type', 'veth', 'peer', 'name', b);
  if (nsB !== nsA) await run(nsA, 'link', 'set', b, 'netns', nsB ?? '1');
  await run(nsA, 'link', 'set', a, 'up');
  await run(nsB, 'link', 'set', b, 'up');
}

/** Spawns `command` inside namespace `ns` (ip netns exec). */
export function spawnIn(ns: string, command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, command, ...args], options);
}

/** Runs `command` inside `ns` to completion and returns its stdout; rejects on non-zero exit. */
export async function execIn(ns: string, command: string, args: readonly string[], timeoutMs = 60_000): Promise<string> {
  const { stdout } = await execFileP('ip', ['netns', 'exec', ns, command, ...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}
