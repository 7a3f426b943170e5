import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeLbaStatusData, decodeUnmapList, encodeUnmapList, lbaStatusData, ProvisioningStatus } from './thin-provisioning.js';
import { readCapacity16, vpdPage, type UnitGeometry, type UnitIdentity } from './scsi-data.js';

const limits = { capacity: 1000n, maxDescriptors: 4, maxBlocks: 100 };

test('UNMAP parameter list: the list libiscsi sends decodes to its ranges; 0-block descriptors are dropped', () => {
  // libiscsi's unmap(): UNMAP DATA LENGTH 22, BLOCK DESCRIPTOR DATA LENGTH 16, LBA 0, 256 blocks.
  const captured = Buffer.from('001600100000000000000000000000000000010000000000', 'hex');
  assert.deepEqual(decodeUnmapList(captured, { ...limits, maxBlocks: 1000 }), { ranges: [{ lba: 0n, blocks: 256 }] });
  assert.deepEqual(encodeUnmapList([{ lba: 0n, blocks: 256 }]), captured);
  assert.deepEqual(decodeUnmapList(encodeUnmapList([{ lba: 5n, blocks: 0 }, { lba: 999n, blocks: 1 }]), limits), { ranges: [{ lba: 999n, blocks: 1 }] });
  assert.deepEqual(decodeUnmapList(encodeUnmapList([]), limits), { ranges: [] });
});

test('UNMAP parameter list: short list, out of range, too many descriptors, too many blocks, truncated descriptors', () => {
  assert.deepEqual(decodeUnmapList(Buffer.alloc(7), limits), { error: { kind: 'lengthError' } });
  assert.deepEqual(decodeUnmapList(encodeUnmapList([{ lba: 999n, blocks: 2 }]), limits), { error: { kind: 'outOfRange', lba: 999n } });
  assert.deepEqual(decodeUnmapList(encodeUnmapList([{ lba: 0xffffffffffffffffn, blocks: 1 }]), limits), { error: { kind: 'outOfRange', lba: 0xffffffffffffffffn } }, 'no 64-bit wrap');
  const five = Array.from({ length: 5 }, (_, i) => ({ lba: BigInt(i), blocks: 1 }));
  assert.deepEqual(decodeUnmapList(encodeUnmapList(five), limits), { error: { kind: 'invalidField', byte: 2 } });
  assert.deepEqual(decodeUnmapList(encodeUnmapList([{ lba: 0n, blocks: 60 }, { lba: 100n, blocks: 41 }]), limits), { error: { kind: 'invalidField', byte: 8 + 16 + 8 } });
  // The announced length wins when the list is longer; the list wins when it is shorter; a partial descriptor is ignored.
  const two = encodeUnmapList([{ lba: 1n, blocks: 1 }, { lba: 2n, blocks: 1 }]);
  const oneAnnounced = Buffer.from(two);
  oneAnnounced.writeUInt16BE(16, 2);
  assert.deepEqual(decodeUnmapList(oneAnnounced, limits), { ranges: [{ lba: 1n, blocks: 1 }] });
  assert.deepEqual(decodeUnmapList(two.subarray(0, 8 + 16 + 15), limits), { ranges: [{ lba: 1n, blocks: 1 }] });
  const odd = Buffer.from(two);
  odd.writeUInt16BE(31, 2);
  assert.deepEqual(decodeUnmapList(odd, limits), { ranges: [{ lba: 1n, blocks: 1 }] }, 'a descriptor data length that is not a multiple of 16');
});

test('GET LBA STATUS data: parameter data length, 16-byte descriptors, round trip', () => {
  const d = lbaStatusData([
    { lba: 0n, blocks: 8, status: ProvisioningStatus.mapped },
    { lba: 8n, blocks: 0xffffffff, status: ProvisioningStatus.deallocated },
  ]);
  assert.equal(d.length, 8 + 32);
  assert.equal(d.readUInt32BE(0), 36);
  assert.equal(d.toString('hex', 8, 24), '00000000000000000000000800000000');
  assert.equal(d.toString('hex', 24, 40), '0000000000000008ffffffff01000000');
  assert.deepEqual(decodeLbaStatusData(d).descriptors, [
    { lba: 0n, blocks: 8, status: 0 },
    { lba: 8n, blocks: 0xffffffff, status: 1 },
  ]);
  assert.deepEqual(decodeLbaStatusData(d.subarray(0, 30)).descriptors.length, 1, 'a truncated descriptor is dropped');
  assert.throws(() => decodeLbaStatusData(Buffer.alloc(4)), RangeError);
});

test('thin geometry: READ CAPACITY 16 LBPME/LBPRZ, VPD B0h unmap limits, VPD B2h; fully provisioned has none', () => {
  const id: UnitIdentity = { vendor: 'DISKLESS', product: 'VIRTUAL-DISK', revision: '0001', serial: 's', naa: 0x3000000000000001n, targetName: 'iqn.2026-11.io.diskless:t', portalGroupTag: 1, relativeTargetPort: 1 };
  const full: UnitGeometry = { blocks: 131072n, blockSize: 512, readOnly: false, volatileWriteCache: true, maxTransferBlocks: 16384, physicalBlockSize: 4096 };
  const thin: UnitGeometry = { ...full, provisioning: { maxUnmapBlocks: 1 << 20, maxUnmapDescriptors: 1024, unmapGranularity: 8 } };
  assert.equal(readCapacity16(full)[14], 0);
  assert.equal(readCapacity16(thin)[14], 0xc0);
  assert.equal(vpdPage(0xb2, id, full), null);
  assert.deepEqual([...vpdPage(0xb2, id, thin)!], [0, 0xb2, 0, 4, 0, 0xe4, 0x02, 0]);
  assert.deepEqual([...vpdPage(0x00, id, thin)!.subarray(4)], [0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2]);
  const b0 = vpdPage(0xb0, id, thin)!;
  assert.deepEqual([b0.readUInt32BE(20), b0.readUInt32BE(24), b0.readUInt32BE(28), b0.readUInt32BE(32)], [1 << 20, 1024, 8, 0x80000000]);
  const f0 = vpdPage(0xb0, id, full)!;
  assert.deepEqual([f0.readUInt32BE(20), f0.readUInt32BE(24), f0.readUInt32BE(28), f0.readUInt32BE(32)], [0, 0, 0, 0]);
});
