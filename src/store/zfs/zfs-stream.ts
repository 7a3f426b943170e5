import { DisklessError } from '../../errors/index.js';

/**
 * The first record of every `zfs send` stream (DRR_BEGIN), decoded without I/O. The stream is
 * a sequence of 312-byte `dmu_replay_record` headers (some followed by a payload), written in
 * the sender's byte order; the first is:
 *
 *   0  u32 drr_type (0 = BEGIN)      4  u32 drr_payloadlen
 *   8  u64 drr_magic 0x2F5BACBAC    16  u64 drr_versioninfo (stream version, feature flags)
 *  24  u64 drr_creation_time        32  u32 drr_type (objset type: 2 = ZPL file system, 3 = zvol)
 *  36  u32 drr_flags                40  u64 drr_toguid   48  u64 drr_fromguid (0: a full stream)
 *  56  char drr_toname[256]         ("pool/fs@snap" on the sender)
 *
 * The receiver uses it to tell a full stream from an incremental one before starting `zfs
 * receive` (so the right STORE_* code comes out), to learn the snapshot's name and its guid
 * (zfs-fuse, pool version 23, has no `guid` property), and to reject what is not a stream.
 */
export interface ZfsStreamBegin {
  /** True when the header was little-endian (x86 senders). */
  readonly littleEndian: boolean;
  /** ZFS `guid` of the snapshot the stream creates, as a decimal string. */
  readonly toGuid: string;
  /** guid of the incremental base, or undefined for a full stream. */
  readonly fromGuid: string | undefined;
  /** The sender's "dataset@snapshot". */
  readonly toName: string;
  /** The snapshot part of `toName`. */
  readonly snapshot: string;
  /** Creation time of the snapshot on the sender, seconds since 1970. */
  readonly creationTime: number;
  /** dmu_objset_type_t of the sent dataset: 2 a file system, 3 a zvol. */
  readonly objsetType: number;
}

/** sizeof(dmu_replay_record_t): every record header, and the bytes `decodeZfsStreamBegin` needs. */
export const ZFS_RECORD_HEADER_BYTES = 312;
/** DMU_BACKUP_MAGIC. */
export const ZFS_STREAM_MAGIC = 0x2f5bacbacn;
const DRR_BEGIN = 0;
const OFF = { type: 0, magic: 8, creation: 24, objsetType: 32, toGuid: 40, fromGuid: 48, toName: 56 } as const;
const TONAME_MAX = 256;

/**
 * Decodes the DRR_BEGIN record at the start of `bytes` (at least ZFS_RECORD_HEADER_BYTES).
 * Throws STORE_STREAM_INVALID naming the field when it is not the start of a send stream.
 */
export function decodeZfsStreamBegin(bytes: Buffer): ZfsStreamBegin {
  if (bytes.length < ZFS_RECORD_HEADER_BYTES) {
    throw invalid(`the stream is ${bytes.length} bytes, shorter than one ${ZFS_RECORD_HEADER_BYTES}-byte record header`, 'length', bytes.length);
  }
  let le: boolean;
  if (bytes.readBigUInt64LE(OFF.magic) === ZFS_STREAM_MAGIC) le = true;
  else if (bytes.readBigUInt64BE(OFF.magic) === ZFS_STREAM_MAGIC) le = false;
  else throw invalid(`drr_magic is 0x${bytes.readBigUInt64LE(OFF.magic).toString(16)}, not 0x${ZFS_STREAM_MAGIC.toString(16)}`, 'drr_magic', bytes.readBigUInt64LE(OFF.magic).toString(16));
  const u32 = (o: number): number => (le ? bytes.readUInt32LE(o) : bytes.readUInt32BE(o));
  const u64 = (o: number): bigint => (le ? bytes.readBigUInt64LE(o) : bytes.readBigUInt64BE(o));
  const type = u32(OFF.type);
  if (type !== DRR_BEGIN) throw invalid(`the first record is of type ${type}, not BEGIN (0)`, 'drr_type', type);
  const nameField = bytes.subarray(OFF.toName, OFF.toName + TONAME_MAX);
  const nul = nameField.indexOf(0);
  const toName = nameField.subarray(0, nul < 0 ? TONAME_MAX : nul).toString('utf8');
  const at = toName.indexOf('@');
  if (at <= 0 || at === toName.length - 1) throw invalid(`drr_toname ${JSON.stringify(toName)} is not dataset@snapshot`, 'drr_toname', toName);
  const from = u64(OFF.fromGuid);
  const to = u64(OFF.toGuid);
  if (to === 0n) throw invalid('drr_toguid is 0', 'drr_toguid', '0');
  return {
    littleEndian: le,
    toGuid: to.toString(),
    fromGuid: from === 0n ? undefined : from.toString(),
    toName,
    snapshot: toName.slice(at + 1),
    creationTime: Number(u64(OFF.creation)),
    objsetType: u32(OFF.objsetType),
  };
}

function invalid(why: string, field: string, value: unknown): DisklessError {
  return new DisklessError('STORE_STREAM_INVALID', `cannot decode zfs send stream header: ${why}`, { field, value });
}

/** dmu_replay_record types (drr_type) of version-23 streams and later. */
export const DrrType = { BEGIN: 0, OBJECT: 1, FREEOBJECTS: 2, WRITE: 3, FREE: 4, END: 5, WRITE_BYREF: 6, SPILL: 7 } as const;

/**
 * Walks a `zfs send` stream record by record as it passes through (an incremental decoder
 * with an explicit leftover buffer), so the receiver can tell where the stream really ends:
 * `zfs receive` stops reading at the END record and ignores whatever follows, so a stream
 * with trailing garbage would be accepted. The framer forwards every byte except the END
 * record, which it holds back until the source is exhausted: `finish()` hands it over only
 * when nothing came after it; otherwise it throws, and the caller closes zfs's stdin without
 * the END record, which makes `zfs receive` fail and leave nothing behind.
 *
 * Payload sizes per record: BEGIN drr_payloadlen (a property list with -p/-R), OBJECT the
 * bonus buffer rounded up to 8 bytes (drr_bonuslen at byte 28), WRITE drr_length (byte 32),
 * SPILL drr_length (byte 16); the others none. A record type it does not know (a newer
 * stream feature) switches it to plain pass-through: the END record is then not tracked.
 */
export class ZfsStreamFramer {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes still to pass of the current record's payload. */
  private payloadLeft = 0;
  private littleEndian: boolean | undefined;
  private heldEnd: Buffer | undefined;
  private passThrough = false;
  /** Bytes seen after the END record (must stay 0). */
  private trailing = 0;
  /** drr_toguid of the BEGIN record, which the END record must repeat. */
  private toGuid: bigint | undefined;
  /** Bytes of WRITE payload seen so far (the data the stream carries). */
  writeBytes = 0;

  /** Feeds one chunk; returns the bytes that may be forwarded to `zfs receive` now. */
  push(chunk: Buffer): Buffer[] {
    if (this.passThrough) return [chunk];
    if (this.heldEnd !== undefined) {
      this.trailing += chunk.length;
      return [];
    }
    const out: Buffer[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.payloadLeft > 0) {
        const n = Math.min(this.payloadLeft, chunk.length - at);
        out.push(chunk.subarray(at, at + n));
        this.payloadLeft -= n;
        at += n;
        continue;
      }
      if (this.heldEnd !== undefined) {
        this.trailing += chunk.length - at;
        break;
      }
      const need = ZFS_RECORD_HEADER_BYTES - this.pendingBytes;
      const n = Math.min(need, chunk.length - at);
      this.pending.push(chunk.subarray(at, at + n));
      this.pendingBytes += n;
      at += n;
      if (this.pendingBytes < ZFS_RECORD_HEADER_BYTES) break;
      const header = Buffer.concat(this.pending);
      this.pending = [];
      this.pendingBytes = 0;
      if (this.littleEndian === undefined) this.littleEndian = decodeZfsStreamBegin(header).littleEndian;
      const le = this.littleEndian;
      const u32 = (o: number): number => (le ? header.readUInt32LE(o) : header.readUInt32BE(o));
      const u64 = (o: number): number => Number(le ? header.readBigUInt64LE(o) : header.readBigUInt64BE(o));
      const type = u32(0);
      if (type === DrrType.BEGIN) this.toGuid = le ? header.readBigUInt64LE(40) : header.readBigUInt64BE(40);
      switch (type) {
        case DrrType.BEGIN:
          this.payloadLeft = u32(4);
          break;
        case DrrType.OBJECT:
          this.payloadLeft = Math.ceil(u32(28) / 8) * 8;
          break;
        case DrrType.WRITE:
          this.payloadLeft = u64(32);
          this.writeBytes += this.payloadLeft;
          break;
        case DrrType.SPILL:
          this.payloadLeft = u64(16);
          break;
        case DrrType.FREEOBJECTS:
        case DrrType.FREE:
        case DrrType.WRITE_BYREF:
          break;
        case DrrType.END:
          this.checkEnd(header);
          this.heldEnd = header;
          continue;
        default:
          // A record type from a newer stream format: forward the rest untouched.
          this.passThrough = true;
          out.push(header, chunk.subarray(at));
          return out;
      }
      out.push(header);
    }
    return out;
  }

  /**
   * `zfs receive` checks the END record's stream checksum but not the rest of it: a flipped
   * byte in drr_toguid or the zero padding after it would pass. Checked here instead: the
   * payload length is 0, drr_toguid repeats the BEGIN record's, and bytes 48-311 are zero.
   */
  private checkEnd(header: Buffer): void {
    const le = this.littleEndian;
    const toGuid = le ? header.readBigUInt64LE(40) : header.readBigUInt64BE(40);
    const payload = le ? header.readUInt32LE(4) : header.readUInt32BE(4);
    let padding = true;
    for (let i = 48; i < ZFS_RECORD_HEADER_BYTES; i++) if (header[i] !== 0) padding = false;
    if (payload !== 0 || (this.toGuid !== undefined && toGuid !== this.toGuid) || !padding) {
      throw new DisklessError('STORE_STREAM_INVALID', 'cannot receive zfs send stream: its END record is damaged (payload length, drr_toguid or padding)', { field: 'END', toGuid: toGuid.toString() });
    }
  }

  /**
   * The source ended: returns the held END record to forward last. Throws
   * STORE_STREAM_INVALID when bytes followed the END record; returns nothing when the END
   * record never came (a truncated stream: `zfs receive` then fails on its own).
   */
  finish(): Buffer[] {
    if (this.trailing > 0) {
      throw new DisklessError('STORE_STREAM_INVALID', `cannot receive zfs send stream: ${this.trailing} bytes follow its END record`, { field: 'stream', trailingBytes: this.trailing });
    }
    return this.heldEnd ? [this.heldEnd] : [];
  }

  /** True once the END record has been seen (or when tracking stopped at an unknown record type). */
  get complete(): boolean {
    return this.heldEnd !== undefined || this.passThrough;
  }
}
