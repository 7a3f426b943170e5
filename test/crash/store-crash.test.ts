/**
 * Crash test of the embedded store through the iSCSI target. A child process serves one
 * volume of an embedded pool; a writer sends batches of WRITE(16)s (some with FUA) whose
 * every block carries {seed, write number, LBA, CRC}, and a SYNCHRONIZE CACHE after each batch.
 * At a random moment the server is killed with SIGKILL, restarted on the same pool, and every
 * block of the volume is read back through iSCSI:
 *   - a block acknowledged durable (by the SYNCHRONIZE CACHE after its batch, or by its own
 *     FUA write) holds that write or one that came after it;
 *   - a block with unacknowledged writes holds the durable value or one of those writes;
 *   - nothing is ever garbage (torn, misplaced, or from another LBA).
 * After the last round the pool is opened in-process and scrubbed: it must be clean.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { EmbeddedStorageDriver } from '../../src/store/embedded/embedded-storage-driver.js';
import { readStamp, stampBlock } from '../support/block-pattern.js';
import type { IscsiTestClient } from '../support/iscsi-client.js';
import { describeOutcome, read16, synchronizeCache, write16 } from '../support/scsi-io.js';
import { loginTo, startPoolServer, stopPoolServer, type PoolServerOptions } from './pool-server.js';

const BLOCK = 512;
const VOLUME_SIZE = 64 * 1024 * 1024;
/** The writer works in the first 2 MiB: dense enough that batches overwrite each other often. */
const REGION_BLOCKS = (2 * 1024 * 1024) / BLOCK;
const READ_BLOCKS = 512;
const WRITES_PER_BATCH = 12;
const MAX_WRITE_BLOCKS = 48;

/**
 * What each block may hold. `durable`: the write number last known durable (0: never written,
 * reads zeros); `after`: write numbers sent to it since, in order, any of which may have landed.
 */
class BlockModel {
  readonly durable = new Uint32Array(REGION_BLOCKS);
  readonly after = new Map<number, number[]>();

  sent(lba: number, blocks: number, write: number): void {
    for (let b = lba; b < lba + blocks; b++) {
      const list = this.after.get(b);
      if (list) list.push(write);
      else this.after.set(b, [write]);
    }
  }

  /** A FUA write came back GOOD: exactly it is durable for its blocks. */
  fuaDone(lba: number, blocks: number, write: number): void {
    for (let b = lba; b < lba + blocks; b++) {
      this.durable[b] = write;
      const list = this.after.get(b)!;
      list.splice(0, list.indexOf(write) + 1);
      if (list.length === 0) this.after.delete(b);
    }
  }

  /** SYNCHRONIZE CACHE came back GOOD: the latest write of every block is durable. */
  synced(): void {
    for (const [b, list] of this.after) this.durable[b] = list[list.length - 1]!;
    this.after.clear();
  }

  /** Checks one block read back after a crash; returns a description of what is wrong, or undefined. Then the block's state is what was read. */
  check(lba: number, block: Buffer, seed: number): string | undefined {
    const s = readStamp(block);
    const allowed = [this.durable[lba]!, ...(this.after.get(lba) ?? [])];
    let got: number;
    if (s === 'garbage') return `LBA ${lba}: garbage (allowed writes ${allowed.join(',')})`;
    if (s === 'zero') got = 0;
    else {
      if (s.seed !== seed || s.lba !== lba) return `LBA ${lba}: holds a block stamped for LBA ${s.lba} seed ${s.seed} (write ${s.batch})`;
      got = s.batch;
    }
    if (!allowed.includes(got)) return `LBA ${lba}: holds write ${got}, allowed ${allowed.join(',')} (durable ${this.durable[lba]})`;
    this.durable[lba] = got;
    this.after.delete(lba);
    return undefined;
  }
}

/** Reads the region through iSCSI and checks every block; returns the first problems found. */
async function verify(client: IscsiTestClient, model: BlockModel, seed: number): Promise<string[]> {
  const problems: string[] = [];
  for (let lba = 0; lba < REGION_BLOCKS; lba += READ_BLOCKS) {
    const r = await read16(client, lba, READ_BLOCKS, BLOCK);
    if (!r.ok) {
      problems.push(`READ(16) at LBA ${lba}: ${describeOutcome(r)}`);
      continue;
    }
    for (let i = 0; i < READ_BLOCKS && problems.length < 10; i++) {
      const p = model.check(lba + i, r.data.subarray(i * BLOCK, (i + 1) * BLOCK), seed);
      if (p) problems.push(p);
    }
  }
  return problems;
}

/** Writes batches until the connection dies (the kill); calls `acknowledged(n)` after each SYNCHRONIZE CACHE; returns the batches acknowledged. */
async function writeBatches(client: IscsiTestClient, model: BlockModel, seed: number, counter: { write: number }, acknowledged: (n: number) => void): Promise<number> {
  let acked = 0;
  try {
    for (;;) {
      for (let w = 0; w < WRITES_PER_BATCH; w++) {
        const blocks = randomInt(1, MAX_WRITE_BLOCKS + 1);
        const lba = randomInt(0, REGION_BLOCKS - blocks + 1);
        const write = ++counter.write;
        const data = Buffer.alloc(blocks * BLOCK);
        for (let b = 0; b < blocks; b++) stampBlock(data.subarray(b * BLOCK, (b + 1) * BLOCK), { seed, batch: write, lba: lba + b });
        const fua = randomInt(4) === 0;
        model.sent(lba, blocks, write);
        const r = await write16(client, lba, data, BLOCK, fua);
        assert.ok(r.ok, `WRITE(16) ${write} at LBA ${lba}: ${describeOutcome(r)}`);
        if (fua) model.fuaDone(lba, blocks, write);
      }
      const s = await synchronizeCache(client);
      assert.ok(s.ok, `SYNCHRONIZE CACHE: ${describeOutcome(s)}`);
      model.synced();
      acknowledged(++acked);
    }
  } catch (err) {
    // The kill shows up as the connection closing under a command; anything else (a failed assertion) is a finding.
    if (!(err instanceof assert.AssertionError) && (client.closed || /connection closed/.test((err as Error).message))) return acked;
    throw err;
  }
}

async function crashRounds(diag: (line: string) => void, label: string, rounds: number, port: number, withMirror: boolean): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'dl4d-crash-'));
  const pool = join(dir, 'pool');
  const mirror = withMirror ? join(dir, 'mirror') : undefined;
  const seed = randomInt(1, 0x7fffffff);
  const o: PoolServerOptions = { pool, ...(mirror ? { mirror } : {}), volume: 'crash', iqn: `iqn.2026-11.io.diskless:dl4d-crash-${label}`, port };
  try {
    const setup = await EmbeddedStorageDriver.open({ pool, ...(mirror ? { mirror } : {}) });
    await setup.create('crash', { size: VOLUME_SIZE });
    await setup.close();

    const model = new BlockModel();
    const counter = { write: 0 };
    let totalAcked = 0;
    for (let round = 0; round <= rounds; round++) {
      const server = await startPoolServer(o);
      let client: IscsiTestClient | undefined;
      try {
        client = await loginTo(o);
        const problems = await verify(client, model, seed);
        assert.deepEqual(problems, [], `after kill ${round} of ${rounds} (${counter.write} writes so far, seed ${seed})`);
        const s = await synchronizeCache(client);
        assert.ok(s.ok, `SYNCHRONIZE CACHE after restart: ${describeOutcome(s)}`);
        if (round === rounds) break;
        // Kill 0-60 ms after the writer has had 0-4 batches acknowledged: mid-write, mid-sync or mid-commit.
        const killAfter = randomInt(0, 5);
        let killAt: NodeJS.Timeout | undefined;
        const arm = () => (killAt = setTimeout(() => server.child.kill('SIGKILL'), randomInt(0, 60)));
        if (killAfter === 0) arm();
        totalAcked += await writeBatches(client, model, seed, counter, (n) => {
          if (n === killAfter) arm();
        });
        clearTimeout(killAt);
        assert.equal(await server.exited, 'SIGKILL', `round ${round}: the server died of the kill, not of itself: ${server.stderr()}`);
      } finally {
        client?.close();
        await stopPoolServer(server);
      }
    }
    assert.ok(totalAcked >= rounds, `${totalAcked} batches acknowledged over ${rounds} rounds: the writer did too little before the kills`);
    diag(`${label}: ${rounds} kills, ${totalAcked} batches acknowledged, ${counter.write} writes, seed ${seed}`);

    const driver = await EmbeddedStorageDriver.open({ pool, ...(mirror ? { mirror } : {}) });
    try {
      const report = await driver.scrub();
      assert.deepEqual({ errors: report.errors, repaired: report.repaired, unrecoverable: report.unrecoverable }, { errors: 0, repaired: 0, unrecoverable: 0 }, `scrub after ${rounds} kills`);
      assert.ok(report.bytesChecked > 0);
    } finally {
      await driver.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('crash: 12 kill -9 of the iSCSI server mid-write, pool without mirror: every acknowledged write intact, nothing torn, scrub clean', { timeout: 60_000 }, (t) => crashRounds((l) => t.diagnostic(l), 'single', 12, 15110, false));

test('crash: 12 kill -9 of the iSCSI server mid-write, mirrored pool: every acknowledged write intact, nothing torn, scrub clean', { timeout: 60_000 }, (t) => crashRounds((l) => t.diagnostic(l), 'mirror', 12, 15111, true));
