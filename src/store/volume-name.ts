import { DisklessError } from '../errors/index.js';

/** Volume names: what the config schema allows (letters, digits, . _ -; 1-63 chars; not starting with . _ -). */
export const VOLUME_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$/;

/**
 * Throws STORE_INVALID_NAME unless `name` is a legal volume name. Every driver calls this
 * before touching the disk, so a name can never escape the volumes directory ("..", "/").
 */
export function assertVolumeName(name: string): void {
  if (typeof name !== 'string' || !VOLUME_NAME_PATTERN.test(name)) {
    throw new DisklessError('STORE_INVALID_NAME', `cannot use volume name ${JSON.stringify(name)}: allowed are 1-63 letters, digits, . _ - starting with a letter or digit`, {
      field: 'name',
      value: name,
      allowed: VOLUME_NAME_PATTERN.source,
    });
  }
}
