/**
 * Loads the project's one native addon (native/, target diskless_raw: AF_PACKET sockets, the
 * TFTP UDP transfer socket, TCP_QUICKACK). Every src/net wrapper goes through here, so the
 * path rules and the NET_ADDON_MISSING error are said once. Node caches the module after the
 * first load, so a later call costs a few stat calls (sockets are opened at start-up).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DisklessError } from '../errors/index.js';

/** Where node-gyp leaves the addon, relative to the repository root. */
export const ADDON_PATH = join('native', 'build', 'Release', 'diskless_raw.node');

/**
 * The repository root: the nearest directory above this file holding package.json. Works from
 * src/net (tsx) and from dist/src/net (compiled) alike.
 */
function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return dirname(fileURLToPath(import.meta.url));
    dir = up;
  }
}

/**
 * The addon's exports, typed by the caller. Throws NET_ADDON_MISSING (with the path and "run
 * `make build`") when the file is absent or does not load.
 */
export function loadNativeAddon<T>(): T {
  const path = join(repositoryRoot(), ADDON_PATH);
  if (!existsSync(path)) {
    throw new DisklessError('NET_ADDON_MISSING', `cannot load the native addon: ${path} does not exist; run \`make build\``, { path });
  }
  try {
    return createRequire(import.meta.url)(path) as T;
  } catch (err) {
    throw new DisklessError('NET_ADDON_MISSING', `cannot load the native addon ${path}: ${(err as Error).message}; run \`make build\` to rebuild it`, { path }, { cause: err });
  }
}

const exportsByName = new Map<string, unknown>();

/**
 * The addon's export `name`, or undefined when the addon is not built (or does not load) or
 * lacks it — e.g. a CPU-specific function the addon leaves out. Resolved once per process and
 * name: for optional fast paths whose callers fall back to plain JS.
 */
export function optionalNative<F>(name: string): F | undefined {
  if (!exportsByName.has(name)) {
    let fn: unknown;
    try {
      fn = loadNativeAddon<Record<string, unknown>>()[name];
    } catch {
      fn = undefined;
    }
    exportsByName.set(name, typeof fn === 'function' ? fn : undefined);
  }
  return exportsByName.get(name) as F | undefined;
}
