/**
 * Store failures reach the initiator as the sense the storage-engine issue asks for, through
 * the real target over TCP: STORE_CORRUPT (a block with no good copy) → MEDIUM ERROR /
 * UNRECOVERED READ ERROR 03/11/00 with the bad LBA in INFORMATION, STORE_NO_SPACE (a full
 * pool) → DATA PROTECT / SPACE ALLOCATION FAILED WRITE PROTECT 07/27/07. The device is a real
 * file volume behind a wrapper that fails the chosen blocks the way a checksumming driver
 * does; the real corruption tests (bytes flipped on disk) live with the embedded driver.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IscsiTestClient } from '../../../test/support/iscsi-client.js';
import { DisklessError } from '../../errors/index.js';
import { silentLogger } from '../../observe/logger.js';
import { Metrics } from '../../observe/metrics.js';
import { ForwardingBlockDevice } from '../../store/forwarding-block-device.js';
import { FileStorageDriver } from '../../store/file/file-storage-driver.js';
import { decodeSense } from '../../wire/scsi/sense.js';
import { Asc, ScsiStatus, SenseKey } from '../../wire/scsi/scsi-constants.js';
import { IscsiServer } from './iscsi-server.js';
import { StaticTargetResolver } from './static-target-resolver.js';

const TARGET = 'iqn.2026-11.io.diskless:faulty';
const BS = 512;
const SIZE = 1024 * 1024;
/** LBAs whose every copy is bad. */
const CORRUPT_LBA = 100;
/** The pool holds this many bytes of writes and no more. */
const CAPACITY = 8 * BS;

/** A real device that fails like a checksumming, capacity-limited pool would. */
class FaultyDevice extends ForwardingBlockDevice {
  written = 0;
  override async read(offset: number, length: number): Promise<Buffer> {
    const b = Buffer.alloc(length);
    await this.readInto(offset, b);
    return b;
  }
  override async readInto(offset: number, target: Buffer): Promise<void> {
    const bad = CORRUPT_LBA * BS;
    if (offset <= bad && bad < offset + target.length) throw new DisklessError('STORE_CORRUPT', `block at byte ${bad} failed its checksum on every copy`, { offset: bad });
    await this.inner.readInto(offset, target);
  }
  override async write(offset: number, data: Buffer | readonly Buffer[], options?: { fua?: boolean }): Promise<void> {
    const n = Buffer.isBuffer(data) ? data.length : data.reduce((k, b) => k + b.length, 0);
    if (this.written + n > CAPACITY) throw new DisklessError('STORE_NO_SPACE', `pool full: ${n} more bytes do not fit`, { needed: n });
    this.written += n;
    await this.inner.write(offset, data, options);
  }
}

let dir: string;
let device: FaultyDevice;
let server: IscsiServer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dl-sense-'));
  const store = new FileStorageDriver({ dataDir: dir });
  await store.create('v', { size: SIZE });
  device = new FaultyDevice(await store.open('v'));
  server = new IscsiServer({ address: '127.0.0.1', port: 0, log: silentLogger(), metrics: new Metrics(), shutdownGraceMs: 0, targets: new StaticTargetResolver([{ name: TARGET, device, readOnly: false }]) });
  await server.start();
});

after(async () => {
  await server.stop();
  await device.close();
  await rm(dir, { recursive: true, force: true });
});

async function session(): Promise<IscsiTestClient> {
  const c = await IscsiTestClient.connect(server.port);
  const r = await c.login({ target: TARGET });
  assert.equal(r.statusClass, 0);
  return c;
}

function rw10(op: 0x28 | 0x2a | 0x2f, lba: number, blocks: number): Buffer {
  const b = Buffer.alloc(10);
  b[0] = op;
  b.writeUInt32BE(lba, 2);
  b.writeUInt16BE(blocks, 7);
  return b;
}

test('STORE_CORRUPT: READ and VERIFY of a block with no good copy end in MEDIUM ERROR 03/11/00 naming the LBA; other blocks still read', async (t) => {
  const c = await session();
  t.after(() => c.close());
  for (const [lba, blocks] of [[CORRUPT_LBA, 1], [CORRUPT_LBA - 3, 8]] as const) {
    const r = await c.scsi(rw10(0x28, lba, blocks), { read: blocks * BS });
    assert.equal(r.status, ScsiStatus.checkCondition, `READ ${lba}+${blocks}`);
    assert.equal(r.data.length, 0, 'no data is sent for a failed read, never wrong bytes');
    assert.deepEqual(decodeSense(r.sense), { key: SenseKey.mediumError, ...Asc.unrecoveredReadError, information: BigInt(CORRUPT_LBA) });
  }
  const verify = await c.scsi(rw10(0x2f, CORRUPT_LBA, 1));
  assert.equal(verify.status, ScsiStatus.checkCondition);
  assert.equal(decodeSense(verify.sense)?.key, SenseKey.mediumError);
  const good = await c.scsi(rw10(0x28, CORRUPT_LBA + 1, 4), { read: 4 * BS });
  assert.equal(good.status, ScsiStatus.good);
  assert.deepEqual(good.data, Buffer.alloc(4 * BS));
});

test('STORE_NO_SPACE: a WRITE past the pool capacity ends in DATA PROTECT 07/27/07; what fitted stays written', async (t) => {
  const c = await session();
  t.after(() => c.close());
  const fits = Buffer.alloc(CAPACITY - device.written, 0xa5);
  const ok = await c.scsi(rw10(0x2a, 0, fits.length / BS), { write: fits, immediate: fits.length });
  assert.equal(ok.status, ScsiStatus.good);
  const over = Buffer.alloc(2 * BS, 0x5a);
  const r = await c.scsi(rw10(0x2a, 20, 2), { write: over, immediate: over.length });
  assert.equal(r.status, ScsiStatus.checkCondition);
  const sense = decodeSense(r.sense);
  assert.equal(sense?.key, SenseKey.dataProtect);
  assert.equal(sense?.asc, 0x27);
  assert.equal(sense?.ascq, 0x07);
  const back = await c.scsi(rw10(0x28, 0, fits.length / BS), { read: fits.length });
  assert.deepEqual(back.data, fits);
  const untouched = await c.scsi(rw10(0x28, 20, 2), { read: 2 * BS });
  assert.deepEqual(untouched.data, Buffer.alloc(2 * BS));
});
