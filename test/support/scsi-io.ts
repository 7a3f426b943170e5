/**
 * Block I/O over a logged-in `IscsiTestClient`: READ(16), WRITE(16) with or without FUA,
 * SYNCHRONIZE CACHE(10), and the sense of a CHECK CONDITION decoded. For storage tests that
 * drive a volume through the real target (crash, corruption, out-of-space).
 */
import { ScsiOpcode, ScsiStatus } from '../../src/wire/scsi/scsi-constants.js';
import { decodeSense, type Sense } from '../../src/wire/scsi/sense.js';
import type { CommandResult, IscsiTestClient } from './iscsi-client.js';

/** WRITE(16) byte 1: Force Unit Access (SBC-3 §5.40). */
const FUA = 0x08;

/** Login keys for a session whose reads come back in few Data-In PDUs (writes follow the target's R2Ts). */
export const BULK_LOGIN_KEYS: Array<[string, string]> = [['MaxRecvDataSegmentLength', '262144']];

/** A command's outcome: GOOD, or CHECK CONDITION with its sense decoded. */
export type ScsiOutcome = { readonly ok: true; readonly data: Buffer } | { readonly ok: false; readonly status: number; readonly sense: Sense | null };

function outcome(r: CommandResult): ScsiOutcome {
  if (r.status === ScsiStatus.good) return { ok: true, data: r.data };
  return { ok: false, status: r.status, sense: decodeSense(r.sense) };
}

function cdb16(opcode: number, lba: number, blocks: number, flags = 0): Buffer {
  const c = Buffer.alloc(16);
  c[0] = opcode;
  c[1] = flags;
  c.writeBigUInt64BE(BigInt(lba), 2);
  c.writeUInt32BE(blocks, 10);
  return c;
}

/** READ(16) of `blocks` blocks at `lba`. */
export async function read16(client: IscsiTestClient, lba: number, blocks: number, blockSize: number): Promise<ScsiOutcome> {
  return outcome(await client.scsi(cdb16(ScsiOpcode.read16, lba, blocks), { read: blocks * blockSize }));
}

/** WRITE(16) of `data` (whole blocks) at `lba`; `fua` asks the target to make it durable before answering. */
export async function write16(client: IscsiTestClient, lba: number, data: Buffer, blockSize: number, fua = false): Promise<ScsiOutcome> {
  return outcome(await client.scsi(cdb16(ScsiOpcode.write16, lba, data.length / blockSize, fua ? FUA : 0), { write: data }));
}

/** SYNCHRONIZE CACHE(10) of the whole unit. */
export async function synchronizeCache(client: IscsiTestClient): Promise<ScsiOutcome> {
  const c = Buffer.alloc(10);
  c[0] = ScsiOpcode.synchronizeCache10;
  return outcome(await client.scsi(c));
}

/** "03/11/00"-style text of an outcome's sense (or its status), for assertion messages. */
export function describeOutcome(o: ScsiOutcome): string {
  if (o.ok) return 'GOOD';
  if (!o.sense) return `status 0x${o.status.toString(16)} without sense`;
  const h = (n: number) => n.toString(16).padStart(2, '0');
  return `${h(o.sense.key)}/${h(o.sense.asc)}/${h(o.sense.ascq)}`;
}
