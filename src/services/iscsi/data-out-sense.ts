/**
 * The sense data a write ends with when its Data-Out breaks the sequence rules at ERL 0
 * (RFC 7143 §7.8-7.9). Read by IscsiConnection when it fails a write.
 */
import type { AscPair } from '../../wire/scsi/scsi-constants.js';

/** ABORTED COMMAND additional sense per Data-Out problem (RFC 7143 §11.4.7.2, SPC-4 table 28); keyed by the drop reason. */
export const DATA_OUT_SENSE: Record<string, AscPair> = {
  'data-out-digest': { asc: 0x47, ascq: 0x05 }, // PROTOCOL SERVICE CRC ERROR
  'data-out-datasn': { asc: 0x47, ascq: 0x05 }, // a DataSN gap implies a lost (digest-failed) PDU, §7.9
  'data-out-offset': { asc: 0x4b, ascq: 0x05 }, // DATA OFFSET ERROR
  'data-out-unsolicited-overrun': { asc: 0x0c, ascq: 0x0c }, // UNEXPECTED UNSOLICITED DATA
  'data-out-r2t-overrun': { asc: 0x4b, ascq: 0x00 }, // DATA PHASE ERROR
  'data-out-unknown-ttt': { asc: 0x4b, ascq: 0x00 },
  'data-out-missing-final': { asc: 0x4b, ascq: 0x00 },
  'data-out-early-final': { asc: 0x4b, ascq: 0x00 },
};
