import type { Config } from '../config/schema.js';

/**
 * Client system architecture types, DHCP option 93 (RFC 4578 §2.1, extended by the IANA
 * "Processor Architecture Types" registry). Only the values we answer are named.
 */
export const ClientArch = {
  /** Intel x86PC: legacy BIOS PXE. */
  biosX86: 0,
  /** EFI IA32: 32-bit UEFI; Debian's ipxe package ships no IA32 EFI binary. */
  efiIa32: 6,
  /** EFI BC, which in practice is x64 UEFI (RFC 4578 erratum 4624 swaps 7 and 9). */
  efiBc: 7,
  /** EFI x86-64. */
  efiX64: 9,
  /** ARM 64-bit UEFI. */
  efiArm64: 11,
  /** x64 UEFI HTTP boot: the boot "file" is a URL. */
  efiX64Http: 16,
  /** ARM 64-bit UEFI HTTP boot. */
  efiArm64Http: 19,
} as const;

/** Where firmware HTTP boot clients (arch 16, 19) fetch boot files: `/bootfiles/` on our HTTP server. */
export const BOOT_FILES_HTTP_PATH = '/bootfiles/';

/**
 * The first-stage file a *firmware* PXE client gets for `arch` (undefined: no option 93, an
 * old BIOS client, treated as 0). TFTP names are relative to the TFTP root; HTTP boot arches
 * get a URL under `httpBase` (e.g. "http://10.77.0.1:8080"). Null: nothing to offer this
 * architecture (no binary configured or shipped), so the DHCP server stays silent for it.
 * Pure; called once per DHCP request from a firmware client.
 */
export function firmwareBootFile(arch: number | undefined, bootFiles: Config['bootFiles'], httpBase: string): string | null {
  const uefiX64 = bootFiles.uefiPreferSnp ? bootFiles.uefiSnp : bootFiles.uefi;
  switch (arch ?? ClientArch.biosX86) {
    case ClientArch.biosX86:
      return bootFiles.bios;
    case ClientArch.efiBc:
    case ClientArch.efiX64:
      return uefiX64;
    case ClientArch.efiArm64:
      return bootFiles.arm64 ?? null;
    case ClientArch.efiX64Http:
      return httpBase + BOOT_FILES_HTTP_PATH + encodeURI(uefiX64);
    case ClientArch.efiArm64Http:
      return bootFiles.arm64 === undefined ? null : httpBase + BOOT_FILES_HTTP_PATH + encodeURI(bootFiles.arm64);
    default:
      // Includes 6 (EFI IA32): an x64 binary would not run there, so say nothing rather than mislead.
      return null;
  }
}
