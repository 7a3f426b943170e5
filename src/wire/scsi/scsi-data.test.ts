import { test } from 'node:test';
import assert from 'node:assert/strict';
import { modeSense, readCapacity10, readCapacity16, reportLuns, standardInquiry, vpdPage, type UnitGeometry, type UnitIdentity } from './scsi-data.js';

const id: UnitIdentity = { vendor: 'DISKLESS', product: 'VIRTUAL-DISK', revision: '0001', serial: 'abc123', naa: 0x3123456789abcdefn, targetName: 'iqn.2026-11.io.diskless:v1', portalGroupTag: 1, relativeTargetPort: 1 };
const geo: UnitGeometry = { blocks: 131072n, blockSize: 512, readOnly: false, volatileWriteCache: true, maxTransferBlocks: 16384, physicalBlockSize: 4096 };

test('standard INQUIRY: direct access, SPC-4, HiSup, CmdQue, padded identification', () => {
  const b = standardInquiry(id);
  assert.equal(b.length, 96);
  assert.deepEqual([b[0], b[2], b[3], b[4], b[7]], [0x00, 0x06, 0x12, 91, 0x02]);
  assert.equal(b.toString('ascii', 8, 36), 'DISKLESSVIRTUAL-DISK    0001');
  assert.equal(b.readUInt16BE(62), 0x0460, 'SPC-4 version descriptor');
});

test('VPD 00h lists exactly the pages vpdPage answers; 80h serial; 83h designators', () => {
  const list = vpdPage(0x00, id, geo)!;
  const pages = [...list.subarray(4, 4 + list.readUInt16BE(2))];
  assert.deepEqual(pages, [0x00, 0x80, 0x83, 0xb0, 0xb1]);
  for (const p of pages) assert.equal(vpdPage(p, id, geo)![1], p);
  assert.equal(vpdPage(0xb2, id, geo), null);
  assert.equal(vpdPage(0x80, id, geo)!.toString('ascii', 4), 'abc123');
  const p83 = vpdPage(0x83, id, geo)!;
  const found: Array<{ assoc: number; type: number; value: Buffer }> = [];
  for (let off = 4; off < p83.length; ) {
    const len = p83[off + 3]!;
    found.push({ assoc: (p83[off + 1]! >> 4) & 3, type: p83[off + 1]! & 0x0f, value: p83.subarray(off + 4, off + 4 + len) });
    off += 4 + len;
  }
  assert.equal(found[0]!.type, 3, 'NAA first');
  assert.equal(found[0]!.value.readBigUInt64BE(0), id.naa);
  assert.equal(found[1]!.value.toString('ascii'), 'DISKLESSabc123');
  const names = found.filter((d) => d.type === 8).map((d) => d.value.toString('utf8').replace(/\0+$/, ''));
  assert.deepEqual(names, ['iqn.2026-11.io.diskless:v1,t,0x0001', 'iqn.2026-11.io.diskless:v1']);
  for (const d of found.filter((x) => x.type === 8)) assert.equal(d.value.length % 4, 0, 'SCSI name strings padded to 4');
  const b0 = vpdPage(0xb0, id, geo)!;
  assert.equal(b0.readUInt32BE(8), 16384, 'maximum transfer length');
});

test('READ CAPACITY 10/16 and REPORT LUNS', () => {
  assert.deepEqual([...readCapacity10(geo)], [0, 1, 0xff, 0xff, 0, 0, 2, 0]);
  assert.deepEqual([...readCapacity10({ ...geo, blocks: 1n << 33n })].slice(0, 4), [0xff, 0xff, 0xff, 0xff]);
  const r16 = readCapacity16(geo);
  assert.equal(r16.length, 32);
  assert.equal(r16.readBigUInt64BE(0), 131071n);
  assert.equal(r16.readUInt32BE(8), 512);
  assert.equal(r16[13], 3, '8 logical blocks per physical block');
  assert.equal(r16[14], 0, 'no thin provisioning');
  assert.deepEqual([...reportLuns([0])], [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...reportLuns([1, 300]).subarray(8)], [0, 1, 0, 0, 0, 0, 0, 0, 0x41, 0x2c, 0, 0, 0, 0, 0, 0]);
});

test('MODE SENSE: caching (WCE), control, all pages, block descriptors, write protect', () => {
  const req = { ten: false, disableBlockDescriptors: false, longLba: false, pageControl: 0, pageCode: 0x3f, subpageCode: 0 };
  const all = modeSense(geo, req)!;
  assert.equal(all[0], all.length - 1);
  assert.equal(all[2], 0x10, 'DPOFUA, not write protected');
  assert.equal(all[3], 8);
  assert.equal(all.readUInt32BE(4), 131072);
  assert.equal(all.readUIntBE(9, 3), 512);
  assert.deepEqual([all[12], all[13]], [0x01, 10], 'read-write error recovery page first');
  assert.deepEqual([all[24], all[25], all[26]], [0x08, 18, 0x04], 'caching page with WCE');
  assert.deepEqual([all[44], all[45]], [0x0a, 10], 'control page');
  const ro = modeSense({ ...geo, readOnly: true }, { ...req, disableBlockDescriptors: true, pageCode: 0x08 })!;
  assert.deepEqual([ro[2]! & 0x80, ro[3], ro.length], [0x80, 0, 4 + 20]);
  const ten = modeSense(geo, { ...req, ten: true, longLba: true, pageCode: 0x0a })!;
  assert.equal(ten.readUInt16BE(0), ten.length - 2);
  assert.deepEqual([ten[4], ten.readUInt16BE(6)], [1, 16]);
  assert.equal(ten.readBigUInt64BE(8), 131072n);
  const changeable = modeSense(geo, { ...req, pageControl: 1, pageCode: 0x08, disableBlockDescriptors: true })!;
  assert.equal(changeable[6], 0, 'WCE is not changeable');
  const control = modeSense(geo, { ...req, pageControl: 1, pageCode: 0x0a, disableBlockDescriptors: true })!;
  assert.equal(control[6], 0x04, 'D_SENSE is changeable');
  assert.equal(modeSense(geo, { ...req, pageCode: 0x0a, disableBlockDescriptors: true }, { descriptorSense: true })![6], 0x04, 'current D_SENSE');
  assert.equal(modeSense(geo, { ...req, pageCode: 0x02 }), null);
  assert.equal(modeSense(geo, { ...req, pageCode: 0x08, subpageCode: 1 }), null);
  assert.ok(modeSense(geo, { ...req, subpageCode: 0xff }));
});
