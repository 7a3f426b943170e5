/**
 * Opens a requested file for reading, guaranteeing it lies inside the TFTP root. Called once
 * per read request by TftpServer; costs an open, a readlink and an fstat.
 *
 * Symlinks are followed by open(2) and then judged by where they led: the path of the opened
 * file is read back from /proc/self/fd/N (Linux), which names the inode actually opened, so no
 * rename or symlink swap between a check and the open can escape the root. A symlink that
 * stays inside the root is served (handy for aliases such as boot.ipxe → nodes/x.ipxe).
 * O_NONBLOCK keeps a FIFO from blocking the open; anything but a regular file is refused.
 */
import { constants, promises as fsp } from 'node:fs';
import { close, fstat, open } from 'node:fs';
import { promisify } from 'node:util';
import { join, sep } from 'node:path';
import { DisklessError } from '../../errors/index.js';
import { RefusalReason, relativeRequestPath } from './requested-name.js';

const openP = promisify(open);
const fstatP = promisify(fstat);
const closeP = promisify(close);

/** An open file under the root. The caller owns `fd` and must close it. */
export interface OpenedFile {
  readonly fd: number;
  /** Size at open (fstat); what tsize reports and what is sent. */
  readonly size: number;
  /** Real path of the opened file. */
  readonly path: string;
}

/** Resolves the root once (at server start): its real path, with symlinks resolved. */
export async function realRoot(root: string): Promise<string> {
  try {
    const real = await fsp.realpath(root);
    const st = await fsp.stat(real);
    if (!st.isDirectory()) throw new Error('not a directory');
    return real;
  } catch (err) {
    throw new DisklessError('TFTP_FILE_NOT_FOUND', `cannot use TFTP root ${root}: ${(err as Error).message}`, { field: 'tftp.root', value: root }, { cause: err });
  }
}

function refused(reason: RefusalReason, name: string, why: string): DisklessError {
  return new DisklessError('TFTP_PATH_REFUSED', `cannot serve TFTP file ${JSON.stringify(name)}: ${why}`, { field: 'filename', value: name, reason });
}

/**
 * Opens `filename` (as decoded from the request) under `rootReal` (from realRoot). Throws
 * TFTP_PATH_REFUSED (data.reason a RefusalReason) or TFTP_FILE_NOT_FOUND.
 */
export async function openInRoot(rootReal: string, filename: string): Promise<OpenedFile> {
  const relative = relativeRequestPath(filename);
  let fd: number;
  try {
    fd = await openP(join(rootReal, relative), constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new DisklessError('TFTP_FILE_NOT_FOUND', `cannot serve TFTP file ${JSON.stringify(relative)}: it does not exist`, { field: 'filename', value: relative, reason: RefusalReason.notFound });
    }
    if (code === 'ELOOP') throw refused(RefusalReason.symlinkEscape, relative, 'too many symlinks');
    throw refused(RefusalReason.permission, relative, `open failed with ${code ?? String(err)}`);
  }
  try {
    const real = await fsp.readlink(`/proc/self/fd/${fd}`);
    if (!real.startsWith(rootReal.endsWith(sep) ? rootReal : rootReal + sep)) throw refused(RefusalReason.symlinkEscape, relative, 'it resolves outside the TFTP root');
    const st = await fstatP(fd);
    if (!st.isFile()) throw refused(RefusalReason.notRegular, relative, 'it is not a regular file');
    return { fd, size: st.size, path: real };
  } catch (err) {
    await closeP(fd).catch(() => undefined);
    throw err;
  }
}
