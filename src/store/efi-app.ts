import { DisklessError } from '../errors/index.js';

/**
 * A tiny x86-64 UEFI application, built byte by byte: it prints a message on COM1 (polling the
 * 16550 UART at 0x3F8 directly, like the demo disk's MBR does under BIOS), switches off the boot
 * manager's 5-minute watchdog, prints the message again through `ConOut->OutputString`, and
 * halts in a loop. It is the demo disk's `\EFI\BOOT\BOOTX64.EFI` (UEFI 2.10 §3.5.1.1, removable
 * media boot path), what iPXE's `sanboot` starts from a SAN disk under UEFI.
 *
 * PE32+ layout (Microsoft PE/COFF specification, "PE Format"), one 0x400-byte file:
 *   0x000  DOS header: "MZ", e_lfanew (at 0x3C) = 0x40
 *   0x040  "PE\0\0"
 *   0x044  COFF header: Machine 0x8664 (AMD64), 1 section, SizeOfOptionalHeader 240,
 *          Characteristics EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE (RELOCS_STRIPPED clear)
 *   0x058  PE32+ optional header: Magic 0x20B, entry point RVA 0x1000, SectionAlignment 0x1000,
 *          FileAlignment 0x200, SizeOfImage 0x2000, SizeOfHeaders 0x200, Subsystem 10
 *          (EFI_APPLICATION), 16 data directories, all empty
 *   0x148  section header ".text": RVA 0x1000, raw data at 0x200, CODE | EXECUTE | READ
 *   0x200  code, then the ASCII message, then the UTF-16 message (2-byte aligned)
 *
 * No relocations are needed: the code addresses its data RIP-relatively and calls firmware
 * services through the system table it is given. EDK2's PE/COFF loader (MdePkg BasePeCoffLib)
 * only insists on relocations when RELOCS_STRIPPED is set and the image cannot be placed at its
 * ImageBase; with the flag clear and an empty base-relocation directory it loads the image
 * anywhere and applies nothing. Checked under OVMF (Debian ovmf 2022.11) by the e2e test.
 */

/** Offsets of the fields the code uses (UEFI 2.10 §4.3, §4.4, §12.4; x64 pointers are 8 bytes). */
const EfiOffset = {
  /** EFI_SYSTEM_TABLE.ConOut: after the 24-byte header, FirmwareVendor, FirmwareRevision (+pad), ConsoleInHandle, ConIn, ConsoleOutHandle. */
  systemTableConOut: 64,
  /** EFI_SYSTEM_TABLE.BootServices. */
  systemTableBootServices: 96,
  /** EFI_BOOT_SERVICES.SetWatchdogTimer: the 30th pointer after the 24-byte header. */
  bootServicesSetWatchdogTimer: 256,
  /** EFI_SIMPLE_TEXT_OUTPUT_PROTOCOL.OutputString, after Reset. */
  textOutputOutputString: 8,
} as const;

/** PE/COFF constants used below. */
const Pe = {
  machineAmd64: 0x8664,
  fileExecutableImage: 0x0002,
  fileLargeAddressAware: 0x0020,
  magicPe32Plus: 0x20b,
  subsystemEfiApplication: 10,
  sectionCode: 0x00000020,
  sectionExecute: 0x20000000,
  sectionRead: 0x40000000,
  dataDirectories: 16,
} as const;

const PE_OFFSET = 0x40;
const SECTION_ALIGNMENT = 0x1000;
const FILE_ALIGNMENT = 0x200;
const TEXT_RVA = 0x1000;
const OPTIONAL_HEADER_SIZE = 112 + Pe.dataDirectories * 8;
const IMAGE_BASE = 0x10000000n;

/**
 * The entry point, `EFI_STATUS efi_main(EFI_HANDLE ImageHandle (rcx), EFI_SYSTEM_TABLE *st (rdx))`,
 * Microsoft x64 calling convention. `lea` displacements (marked) are patched by `buildEfiApp`.
 */
const CODE: readonly (readonly number[])[] = [
  [0x53], //                               push rbx              ; rsp 16-byte aligned again
  [0x48, 0x83, 0xec, 0x20], //             sub rsp, 32           ; shadow space for callees
  [0x48, 0x89, 0xd3], //                   mov rbx, rdx          ; rbx = SystemTable
  [0x48, 0x8d, 0x35, 0, 0, 0, 0], //       lea rsi, [rip+ascii]  ; (patched)
  [0x66, 0xba, 0xfd, 0x03], //     next:   mov dx, 0x3fd         ; line status register
  [0xec], //                       wait:   in al, dx
  [0xa8, 0x20], //                         test al, 0x20         ; transmitter holding register empty?
  [0x74, 0xfb], //                         jz wait
  [0xac], //                               lodsb
  [0x84, 0xc0], //                         test al, al
  [0x74, 0x07], //                         jz serial_done
  [0x66, 0xba, 0xf8, 0x03], //             mov dx, 0x3f8         ; COM1 data
  [0xee], //                               out dx, al
  [0xeb, 0xeb], //                         jmp next
  [0x48, 0x8b, 0x43, EfiOffset.systemTableBootServices], // serial_done: mov rax, [rbx+96]
  [0x31, 0xc9], //                         xor ecx, ecx          ; Timeout = 0: watchdog off
  [0x31, 0xd2], //                         xor edx, edx
  [0x45, 0x31, 0xc0], //                   xor r8d, r8d
  [0x45, 0x31, 0xc9], //                   xor r9d, r9d
  [0xff, 0x90, EfiOffset.bootServicesSetWatchdogTimer & 0xff, EfiOffset.bootServicesSetWatchdogTimer >> 8, 0, 0], // call [rax+256]
  [0x48, 0x8b, 0x4b, EfiOffset.systemTableConOut], // mov rcx, [rbx+64] ; This = ConOut
  [0x48, 0x8d, 0x15, 0, 0, 0, 0], //       lea rdx, [rip+utf16]  ; (patched)
  [0xff, 0x51, EfiOffset.textOutputOutputString], // call [rcx+8] ; OutputString
  [0xf4], //                       halt:   hlt
  [0xeb, 0xfd], //                         jmp halt
];

/** Index in CODE of the two RIP-relative `lea`s. */
const LEA_ASCII = 3;
const LEA_UTF16 = 21;

/**
 * Builds the application printing `message` (printable ASCII plus CR/LF, 1..200 characters;
 * the demo disk passes `DISKLESS-OK\r\n`). Returns the whole PE32+ file.
 */
export function buildEfiApp(message: string): Buffer {
  if (message.length === 0 || message.length > 200 || !/^[\x20-\x7e\r\n]+$/.test(message)) {
    throw new DisklessError('STORE_INVALID_IMAGE', `cannot build EFI application: message ${JSON.stringify(message)} is not allowed; allowed: 1-200 printable ASCII characters, CR, LF`, {
      field: 'message',
      value: message,
      allowed: '1-200 printable ASCII characters, CR, LF',
    });
  }
  const code = Buffer.concat(CODE.map((insn) => Buffer.from(insn)));
  const asciiAt = code.length;
  const ascii = Buffer.from(`${message}\0`, 'latin1');
  const utf16At = (asciiAt + ascii.length + 1) & ~1;
  const utf16 = Buffer.from(`${message}\0`, 'utf16le');
  const textSize = utf16At + utf16.length;
  const text = Buffer.alloc(textSize);
  code.copy(text, 0);
  ascii.copy(text, asciiAt);
  utf16.copy(text, utf16At);
  patchRel32(text, LEA_ASCII, asciiAt);
  patchRel32(text, LEA_UTF16, utf16At);

  const rawSize = alignUp(textSize, FILE_ALIGNMENT);
  const headersSize = FILE_ALIGNMENT;
  const file = Buffer.alloc(headersSize + rawSize);
  // DOS header: only e_magic and e_lfanew matter to a UEFI loader.
  file.write('MZ', 0, 'latin1');
  file.writeUInt32LE(PE_OFFSET, 0x3c);
  file.write('PE\0\0', PE_OFFSET, 'latin1');
  // COFF file header.
  let o = PE_OFFSET + 4;
  file.writeUInt16LE(Pe.machineAmd64, o);
  file.writeUInt16LE(1, o + 2); // NumberOfSections
  file.writeUInt16LE(OPTIONAL_HEADER_SIZE, o + 16);
  file.writeUInt16LE(Pe.fileExecutableImage | Pe.fileLargeAddressAware, o + 18);
  // PE32+ optional header: standard fields, then Windows-specific fields, then data directories.
  o += 20;
  const optional = o;
  file.writeUInt16LE(Pe.magicPe32Plus, o);
  file.writeUInt32LE(rawSize, o + 4); // SizeOfCode
  file.writeUInt32LE(TEXT_RVA, o + 16); // AddressOfEntryPoint
  file.writeUInt32LE(TEXT_RVA, o + 20); // BaseOfCode
  file.writeBigUInt64LE(IMAGE_BASE, o + 24);
  file.writeUInt32LE(SECTION_ALIGNMENT, o + 32);
  file.writeUInt32LE(FILE_ALIGNMENT, o + 36);
  file.writeUInt32LE(TEXT_RVA + alignUp(textSize, SECTION_ALIGNMENT), o + 56); // SizeOfImage
  file.writeUInt32LE(headersSize, o + 60); // SizeOfHeaders
  file.writeUInt16LE(Pe.subsystemEfiApplication, o + 68);
  file.writeBigUInt64LE(0x10000n, o + 72); // SizeOfStackReserve (unused by UEFI)
  file.writeBigUInt64LE(0x1000n, o + 80); // SizeOfStackCommit
  file.writeUInt32LE(Pe.dataDirectories, o + 108); // NumberOfRvaAndSizes; the directories stay zero
  // Section table.
  o = optional + OPTIONAL_HEADER_SIZE;
  file.write('.text', o, 'latin1');
  file.writeUInt32LE(textSize, o + 8); // VirtualSize
  file.writeUInt32LE(TEXT_RVA, o + 12); // VirtualAddress
  file.writeUInt32LE(rawSize, o + 16); // SizeOfRawData
  file.writeUInt32LE(headersSize, o + 20); // PointerToRawData
  file.writeUInt32LE((Pe.sectionCode | Pe.sectionExecute | Pe.sectionRead) >>> 0, o + 36);
  text.copy(file, headersSize);
  return file;
}

/** Offset of the entry point in the file (for tests that disassemble the code). */
export const EFI_APP_CODE_OFFSET = FILE_ALIGNMENT;
/** Length of the machine code before the messages. */
export const EFI_APP_CODE_LENGTH = CODE.reduce((n, insn) => n + insn.length, 0);

/** Sets the rel32 of the `lea` at CODE[index] so that it points at `target` (RIP = next instruction). */
function patchRel32(text: Buffer, index: number, target: number): void {
  let at = 0;
  for (let i = 0; i < index; i++) at += CODE[i]!.length;
  const next = at + CODE[index]!.length;
  text.writeInt32LE(target - next, next - 4);
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}
