import type { ErrorTable } from './error-spec.js';

/** Errors raised by the volume store (src/store) and its drivers. */
export const storeErrors = {
  STORE_INVALID_NAME: { summary: 'a volume name is empty, too long, or has characters other than letters, digits, . _ -', retryable: false },
  STORE_INVALID_SIZE: { summary: 'a volume size is not a positive multiple of the block size, or is smaller than its source', retryable: false },
  STORE_NOT_FOUND: { summary: 'the named volume (or its source file) does not exist', retryable: false },
  STORE_EXISTS: { summary: 'a volume with that name already exists', retryable: false },
  STORE_UNSUPPORTED: { summary: 'the storage driver does not implement this operation (snapshots, clones, send/receive, scrub, unmap)', retryable: false },
  STORE_OUT_OF_RANGE: { summary: 'a block device read or write reaches past the end of the volume or is not block-aligned', retryable: false },
  STORE_READ_ONLY: { summary: 'a write, flush of writes, or unmap was sent to a volume opened read-only', retryable: false },
  STORE_CLOSED: { summary: 'an operation was sent to a block device after close()', retryable: false },
  STORE_IO: { summary: 'the operating system failed a read, write, sync or metadata operation on the volume file', retryable: true },
  STORE_INVALID_IMAGE: { summary: 'a built-in disk image (FAT filesystem, EFI application, partition table) cannot be built as asked: a name that is not 8.3, contents that do not fit, a size outside FAT12/16', retryable: false },
  STORE_BAD_METADATA: { summary: 'a volume metadata sidecar is not valid JSON of the expected shape or version', retryable: false },
} as const satisfies ErrorTable;
