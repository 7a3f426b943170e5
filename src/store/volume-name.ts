import { DisklessError } from '../errors/index.js';

/** Volume names: what the config schema allows (letters, digits, . _ -; 1-63 chars; not starting with . _ -). */
export const VOLUME_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$/;

/** What a name names, for the error message and `data.field`. */
export type NameKind = 'volume' | 'snapshot' | 'tag' | 'base';

/**
 * Throws STORE_INVALID_NAME unless `name` is a legal volume (or snapshot, hold tag, base
 * snapshot) name: every driver calls this before touching the disk, so a name can never
 * escape the volumes directory ("..", "/") or smuggle options into a `zfs` command line.
 */
export function assertName(name: string, kind: NameKind): void {
  if (typeof name !== 'string' || !VOLUME_NAME_PATTERN.test(name)) {
    throw new DisklessError('STORE_INVALID_NAME', `cannot use ${kind === 'tag' ? 'hold tag' : `${kind} name`} ${JSON.stringify(name)}: allowed are 1-63 letters, digits, . _ - starting with a letter or digit`, {
      field: kind === 'volume' ? 'name' : kind,
      value: name,
      allowed: VOLUME_NAME_PATTERN.source,
    });
  }
}

/** `assertName(name, 'volume')`. */
export function assertVolumeName(name: string): void {
  assertName(name, 'volume');
}
