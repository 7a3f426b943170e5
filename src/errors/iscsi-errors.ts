import type { ErrorTable } from './error-spec.js';

/** Errors raised by the iSCSI and SCSI codecs (src/wire/iscsi, src/wire/scsi) and the iSCSI target (src/services/iscsi). */
export const iscsiErrors = {
  ISCSI_TRUNCATED: { summary: 'an iSCSI PDU is shorter than its 48-byte header, its AHS, or its data segment length says', retryable: false },
  ISCSI_BAD_OPCODE: { summary: 'an iSCSI PDU carries an opcode RFC 7143 §11 does not define for that direction', retryable: false },
  ISCSI_BAD_FIELD: { summary: 'an iSCSI PDU header field has a value the protocol does not allow (AHS length, version, stage, reason)', retryable: false },
  ISCSI_SEGMENT_TOO_LONG: { summary: 'an iSCSI data segment is longer than the receiver declared in MaxRecvDataSegmentLength', retryable: false },
  ISCSI_BAD_DIGEST: { summary: 'an iSCSI header or data digest (CRC32C) does not match', retryable: false },
  ISCSI_BAD_TEXT: { summary: 'an iSCSI text segment is not NUL-terminated key=value pairs with legal key names and value lengths (RFC 7143 §6)', retryable: false },
  ISCSI_PROTOCOL: { summary: 'an initiator broke the iSCSI session rules (sequence numbers, task tags, data offsets, phase)', retryable: false },
  ISCSI_LISTEN: { summary: 'the iSCSI target cannot listen on the configured address and port', retryable: true },
  ISCSI_RESERVATIONS_FILE: { summary: 'the persistent reservations file of a logical unit cannot be read, parsed or written', retryable: true },
  SCSI_CHECK_CONDITION: { summary: 'a SCSI command ends in CHECK CONDITION; data holds the sense key, ASC and ASCQ', retryable: false },
} as const satisfies ErrorTable;
