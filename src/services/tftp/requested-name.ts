/**
 * Rules for the file name in a TFTP read request, before anything touches the disk. Pure.
 * The filesystem half (symlinks, file type) is in open-in-root.ts.
 *
 * Decisions (docs/tftp.md):
 * - The name is the request's bytes read as UTF-8; bytes that are not UTF-8 are refused.
 * - `\` is a path separator, as Windows-style PXE clients (WDS) send `boot\x86\wdsnbp.com`;
 *   a file whose name contains a literal backslash therefore cannot be served.
 * - Absolute names (leading `/`) are refused: iPXE, pxelinux and GRUB send names relative to
 *   the server's root, and refusing keeps one unambiguous meaning for every name.
 * - A `..` segment anywhere is refused, even where it would stay inside the root.
 * - Empty and `.` segments are dropped (`a//b`, `./a` name `a/b`, `a`).
 * - Case is kept: the file served is exactly the one named.
 */
import { DisklessError } from '../../errors/index.js';

/** Why a name was refused; the label of diskless_tftp_refused_total. */
export const RefusalReason = {
  nulByte: 'nul_byte',
  notUtf8: 'not_utf8',
  empty: 'empty_name',
  absolute: 'absolute_path',
  traversal: 'dot_dot',
  symlinkEscape: 'symlink_escape',
  notRegular: 'not_regular_file',
  permission: 'permission',
  notFound: 'not_found',
  writeRequest: 'write_request',
  badMode: 'bad_mode',
  badOption: 'bad_option',
  tooLarge: 'too_large',
} as const;
export type RefusalReason = (typeof RefusalReason)[keyof typeof RefusalReason];

const utf8 = new TextDecoder('utf-8', { fatal: true });

function refuse(reason: RefusalReason, name: string, why: string): never {
  throw new DisklessError('TFTP_PATH_REFUSED', `cannot serve TFTP file ${JSON.stringify(name)}: ${why}`, { field: 'filename', value: name, reason });
}

/**
 * Turns a request's file name (latin1 string, one char per byte, as the codec returns it)
 * into a relative path of `/`-separated segments under the root. Throws TFTP_PATH_REFUSED with
 * `data.reason` a RefusalReason.
 */
export function relativeRequestPath(filename: string): string {
  const bytes = Buffer.from(filename, 'latin1');
  if (bytes.includes(0)) refuse(RefusalReason.nulByte, filename, 'it contains a NUL byte');
  let name: string;
  try {
    name = utf8.decode(bytes);
  } catch {
    return refuse(RefusalReason.notUtf8, filename, 'it is not UTF-8');
  }
  name = name.replace(/\\/g, '/');
  if (name.startsWith('/')) refuse(RefusalReason.absolute, name, 'absolute paths are refused; ask for a name relative to the TFTP root');
  const segments: string[] = [];
  for (const segment of name.split('/')) {
    if (segment === '..') refuse(RefusalReason.traversal, name, 'a ".." segment is refused');
    if (segment === '' || segment === '.') continue;
    segments.push(segment);
  }
  if (segments.length === 0) refuse(RefusalReason.empty, name, 'the name is empty');
  return segments.join('/');
}
