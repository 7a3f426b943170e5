import type { ErrorTable } from './error-spec.js';

/** Errors raised by the TFTP codec (src/wire/tftp) and server (src/services/tftp). */
export const tftpErrors = {
  TFTP_TRUNCATED: { summary: 'a TFTP packet is shorter than its fixed part, or a string in it has no NUL terminator', retryable: false },
  TFTP_BAD_OPCODE: { summary: 'a TFTP packet has an opcode RFC 1350 / RFC 2347 do not define', retryable: false },
  TFTP_BAD_FIELD: { summary: 'a TFTP field has a value the protocol does not allow (transfer mode, empty option name, option without value, block number)', retryable: false },
  TFTP_DUPLICATE_OPTION: { summary: 'a TFTP request names the same option twice (option names compare case-insensitively, RFC 2347)', retryable: false },
  TFTP_PATH_REFUSED: { summary: 'a requested file name is outside the TFTP root or not allowed (.., absolute path, NUL, symlink out, not a regular file)', retryable: false },
  TFTP_FILE_NOT_FOUND: { summary: 'the requested file does not exist under the TFTP root', retryable: false },
  TFTP_FILE_TOO_LARGE: { summary: 'a file is too large for the requested transfer (netascii translation is done in memory)', retryable: false },
  TFTP_FILE_CHANGED: { summary: 'a file being served became shorter than its size at open', retryable: true },
} as const satisfies ErrorTable;
