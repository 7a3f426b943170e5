import type { ErrorTable } from './error-spec.js';

/** Errors raised by the control layer (src/control): inventory, boot scripts, discovery. */
export const controlErrors = {
  CONTROL_UNKNOWN_NODE: { summary: 'the MAC is not in the inventory and defaults.unknownNode is ignore, so it gets no boot script', retryable: false },
  IPXE_UNSAFE_VALUE: { summary: 'a value cannot be placed in an iPXE script safely (whitespace, newline, ${ or a character outside the allowed set)', retryable: false },
  BOOT_FILE_MISSING: { summary: 'an iPXE binary the boot policy hands out is missing from bootFiles.ipxeDir or cannot be copied into the TFTP root', retryable: false },
  OUTPUT_CLOSED: { summary: 'the reader of a command\'s standard output went away before the command finished writing (e.g. `diskless volume send … | head`): the stream it got is incomplete', retryable: false },
  DISCOVERY_STORE_FAILED: { summary: 'the discovered-machines file (<dataDir>/discovered.json) cannot be read or written', retryable: true },
} as const satisfies ErrorTable;
