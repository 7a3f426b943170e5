/**
 * The LUN number of an 8-byte LUN field (SAM-5 §4.7): peripheral (00b) or flat (01b) addressing
 * at the first level and nothing below; -1 for anything else (no such LUN). Called for every
 * SCSI command and task management request.
 */
export function decodeLun(lun: bigint): number {
  const first = Number(lun >> 48n);
  if ((lun & 0xffffffffffffn) !== 0n) return -1;
  const method = first >> 14;
  if (method === 0) return first >> 8 === 0 ? first & 0xff : -1;
  if (method === 1) return first & 0x3fff;
  return -1;
}
