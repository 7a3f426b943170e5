import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isDisklessError } from '../../errors/index.js';
import { decodeZfsStreamBegin, DrrType, ZFS_RECORD_HEADER_BYTES, ZFS_STREAM_MAGIC, ZfsStreamFramer } from './zfs-stream.js';

const TO_GUID = 0x4a58198242b13b1fn;

/** One 312-byte record header, little-endian, as zfs-fuse writes them on x86. */
function record(type: number, fill: (h: Buffer) => void = () => undefined): Buffer {
  const h = Buffer.alloc(ZFS_RECORD_HEADER_BYTES);
  h.writeUInt32LE(type, 0);
  fill(h);
  return h;
}

function begin(fromGuid = 0n, name = 'tank/v1@s1'): Buffer {
  return record(DrrType.BEGIN, (h) => {
    h.writeBigUInt64LE(ZFS_STREAM_MAGIC, 8);
    h.writeBigUInt64LE(1n, 16);
    h.writeBigUInt64LE(0x6b00f458n, 24);
    h.writeUInt32LE(2, 32);
    h.writeBigUInt64LE(TO_GUID, 40);
    h.writeBigUInt64LE(fromGuid, 48);
    h.write(name, 56);
  });
}

/** BEGIN, OBJECT (bonus 13 → 16 bytes), WRITE (1000 bytes), FREE, SPILL (24), END. */
function sampleStream(): { bytes: Buffer; end: Buffer } {
  const object = record(DrrType.OBJECT, (h) => h.writeUInt32LE(13, 28));
  const write = record(DrrType.WRITE, (h) => h.writeBigUInt64LE(1000n, 32));
  const spill = record(DrrType.SPILL, (h) => h.writeBigUInt64LE(24n, 16));
  const end = record(DrrType.END, (h) => {
    h.writeBigUInt64LE(0x10026dce684c0dn, 8);
    h.writeBigUInt64LE(TO_GUID, 40);
  });
  const bytes = Buffer.concat([begin(), object, Buffer.alloc(16, 0xb0), write, Buffer.alloc(1000, 0xd0), record(DrrType.FREE), spill, Buffer.alloc(24, 0x5b), end]);
  return { bytes, end };
}

test('decodeZfsStreamBegin reads guids, name and byte order of a BEGIN record', () => {
  const full = decodeZfsStreamBegin(begin());
  assert.deepEqual(full, { littleEndian: true, toGuid: TO_GUID.toString(), fromGuid: undefined, toName: 'tank/v1@s1', snapshot: 's1', creationTime: 0x6b00f458, objsetType: 2 });
  assert.equal(decodeZfsStreamBegin(begin(77n)).fromGuid, '77');
  const be = Buffer.alloc(ZFS_RECORD_HEADER_BYTES);
  be.writeBigUInt64BE(ZFS_STREAM_MAGIC, 8);
  be.writeBigUInt64BE(TO_GUID, 40);
  be.write('p/x@y', 56);
  assert.equal(decodeZfsStreamBegin(be).littleEndian, false);
  assert.equal(decodeZfsStreamBegin(be).toGuid, TO_GUID.toString());
});

test('decodeZfsStreamBegin rejects what is not a stream with STORE_STREAM_INVALID naming the field', () => {
  const cases: Array<[string, Buffer, string]> = [
    ['short', begin().subarray(0, 100), 'length'],
    ['bad magic', (() => { const b = begin(); b[8] = b[8]! ^ 1; return b; })(), 'drr_magic'],
    ['not BEGIN', (() => { const b = begin(); b.writeUInt32LE(3, 0); return b; })(), 'drr_type'],
    ['no @ in name', begin(0n, 'tank/v1'), 'drr_toname'],
    ['zero toguid', (() => { const b = begin(); b.writeBigUInt64LE(0n, 40); return b; })(), 'drr_toguid'],
  ];
  for (const [what, bytes, field] of cases) {
    assert.throws(() => decodeZfsStreamBegin(bytes), (e: unknown) => isDisklessError(e, 'STORE_STREAM_INVALID') && e.data['field'] === field, what);
  }
});

test('ZfsStreamFramer forwards every byte but the END record, at every split offset, and hands END over last', () => {
  const { bytes, end } = sampleStream();
  for (let cut = 1; cut < bytes.length; cut += 7) {
    const f = new ZfsStreamFramer();
    const out = [...f.push(bytes.subarray(0, cut)), ...f.push(bytes.subarray(cut))];
    assert.ok(f.complete, `cut ${cut}: END seen`);
    assert.deepEqual(Buffer.concat(out), bytes.subarray(0, bytes.length - end.length), `cut ${cut}: all but END forwarded`);
    assert.deepEqual(Buffer.concat(f.finish()), end, `cut ${cut}: END last`);
    assert.equal(f.writeBytes, 1000);
  }
});

test('ZfsStreamFramer refuses trailing bytes after END and a damaged END record', () => {
  const { bytes } = sampleStream();
  const f = new ZfsStreamFramer();
  f.push(bytes);
  assert.deepEqual(f.push(Buffer.from('garbage')), []);
  assert.throws(() => f.finish(), (e: unknown) => isDisklessError(e, 'STORE_STREAM_INVALID') && e.data['trailingBytes'] === 7);

  for (const at of [bytes.length - 1, bytes.length - 312 + 40, bytes.length - 312 + 4]) {
    const damaged = Buffer.from(bytes);
    damaged[at] = damaged[at]! ^ 0x40;
    const g = new ZfsStreamFramer();
    assert.throws(() => g.push(damaged), (e: unknown) => isDisklessError(e, 'STORE_STREAM_INVALID'), `byte ${at}`);
  }
});

test('ZfsStreamFramer: a truncated stream has no END to hand over; an unknown record type passes through', () => {
  const { bytes } = sampleStream();
  const f = new ZfsStreamFramer();
  const out = f.push(bytes.subarray(0, 700));
  assert.equal(f.complete, false);
  assert.deepEqual(f.finish(), []);
  assert.deepEqual(Buffer.concat(out), bytes.subarray(0, 640)); // BEGIN, OBJECT and its 16-byte bonus; the partial WRITE header is held
  const g = new ZfsStreamFramer();
  const weird = Buffer.concat([begin(), record(42), Buffer.from('rest')]);
  assert.deepEqual(Buffer.concat(g.push(weird)), weird);
  assert.equal(g.complete, true);
});
