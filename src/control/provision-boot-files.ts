import { copyFile, mkdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { DisklessError } from '../errors/index.js';

/**
 * Makes the TFTP root hold the iPXE binaries the boot policy hands out (from Debian's `ipxe`
 * package, `bootFiles.ipxeDir`): undionly.kpxe, ipxe.efi, snponly.efi. Copies, not symlinks:
 * the TFTP server refuses symlinks that leave its root. A file is copied only when missing or
 * different in size or older than the source, through a temp file and rename, so a client
 * never reads half a binary. Called once at start-up by the composition root; returns the
 * names it (re)copied. A configured arm64 file is the operator's to place, never copied.
 */
export async function provisionBootFiles(bootFiles: Config['bootFiles'], tftpRoot: string): Promise<string[]> {
  await mkdir(tftpRoot, { recursive: true });
  const names = [...new Set([bootFiles.bios, bootFiles.uefi, bootFiles.uefiSnp])];
  const copied: string[] = [];
  for (const name of names) {
    const source = join(bootFiles.ipxeDir, name);
    const target = join(tftpRoot, name);
    let src;
    try {
      src = await stat(source);
    } catch (err) {
      throw new DisklessError(
        'BOOT_FILE_MISSING',
        `cannot provision boot file ${name}: ${source} does not exist (install Debian's ipxe package, or set bootFiles.ipxeDir)`,
        { name, source, key: 'bootFiles.ipxeDir' },
        { cause: err },
      );
    }
    const dst = await stat(target).catch(() => undefined);
    if (dst && dst.size === src.size && dst.mtimeMs >= src.mtimeMs) continue;
    const temp = `${target}.tmp-${process.pid}`;
    try {
      await copyFile(source, temp);
      await rename(temp, target);
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      throw new DisklessError('BOOT_FILE_MISSING', `cannot copy boot file ${source} to ${target}: ${(err as Error).message}`, { name, source, target }, { cause: err });
    }
    copied.push(name);
  }
  return copied;
}
