import type { ErrorTable } from './error-spec.js';

/** Errors raised by the volume store (src/store) and its drivers. */
export const storeErrors = {
  STORE_INVALID_NAME: { summary: 'a volume, snapshot or hold name is empty, too long, or has characters other than letters, digits, . _ -', retryable: false },
  STORE_INVALID_SIZE: { summary: 'a volume size is not a positive multiple of the block size, or is smaller than its source', retryable: false },
  STORE_NOT_FOUND: { summary: 'the named volume (or its source file) does not exist', retryable: false },
  STORE_EXISTS: { summary: 'a volume with that name already exists', retryable: false },
  STORE_UNSUPPORTED: { summary: 'the storage driver does not implement this operation (snapshots, clones, send/receive, scrub, unmap)', retryable: false },
  STORE_OUT_OF_RANGE: { summary: 'a block device read or write reaches past the end of the volume or is not block-aligned', retryable: false },
  STORE_READ_ONLY: { summary: 'a write, flush of writes, or unmap was sent to a volume opened read-only', retryable: false },
  STORE_CLOSED: { summary: 'an operation was sent to a block device after close()', retryable: false },
  STORE_IO: { summary: 'the operating system failed a read, write, sync or metadata operation on the volume file', retryable: true },
  STORE_INVALID_IMAGE: { summary: 'a built-in disk image (FAT filesystem, EFI application, partition table) cannot be built as asked: a name that is not 8.3, contents that do not fit, a size outside FAT12/16', retryable: false },
  STORE_CORRUPT: { summary: 'data failed its checksum and no good copy exists (no mirror, or the mirror is bad too); served as SCSI MEDIUM ERROR 03/11/00, never as wrong bytes', retryable: false },
  STORE_NO_SPACE: { summary: 'the pool is full (its capacity or the file system); served as SCSI SPACE ALLOCATION FAILED 07/27/07; nothing already written is touched', retryable: true },
  STORE_HAS_DEPENDENTS: { summary: 'a volume with snapshots, a snapshot with clones, or a rollback past later snapshots needs the recursive / destroy-later form (as in zfs destroy -r, rollback -r)', retryable: false },
  STORE_HELD: { summary: 'a snapshot with holds cannot be destroyed until every hold is released', retryable: false },
  STORE_BUSY: { summary: 'the pool is locked by another process, or the volume is open and the operation needs it closed', retryable: true },
  STORE_STREAM_INVALID: { summary: 'a send stream is corrupt (bad magic, version, checksum or record), does not match the receiving volume, or its base snapshot is missing; nothing was changed', retryable: false },
  STORE_RECEIVE_INTERRUPTED: { summary: 'a resumable receive stopped before the end of its stream; details.resumeToken restarts it with send --resume', retryable: true },
  STORE_NOT_CLONE: { summary: 'promote was asked for a volume that is not a clone of another volume\'s snapshot', retryable: false },
  STORE_BAD_METADATA: { summary: 'volume or pool metadata is not of the expected shape or format version', retryable: false },
  STORE_ZFS: { summary: 'a zfs or zpool command failed or did not finish within the driver\'s commandTimeoutMs; details carry the command, its exit status and stderr, or timeoutMs', retryable: false },
} as const satisfies ErrorTable;
