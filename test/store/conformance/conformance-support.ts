/**
 * What the storage conformance cases share: the fixture a runner hands them, error and size
 * assertions, and helpers that read and write volumes through `open` and move send streams
 * around in memory.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { isDisklessError } from '../../../src/errors/index.js';
import type { ErrorCode } from '../../../src/errors/index.js';
import type { StorageDriver } from '../../../src/store/storage-driver.js';
import { pattern } from '../../support/block-pattern.js';

export const KiB = 1024;
export const MiB = 1024 * 1024;

/**
 * One fresh, empty storage (a pool directory, a zfs dataset) and a driver over it. Every case
 * gets its own fixture, so cases are independent and can run in any order.
 */
export interface StorageDriverFixture {
  /** The driver as first opened. After `reopen`, use what it returned. */
  readonly driver: StorageDriver;
  /** Closes the current driver and opens the same storage again, as a restarted server would. */
  reopen(): Promise<StorageDriver>;
  /** Closes the current driver and removes the storage. */
  cleanup(): Promise<void>;
}

/** Builds one fixture; called once per case. */
export type StorageDriverFactory = () => Promise<StorageDriverFixture>;

/** One named conformance case (restic's `Suite.TestXxx`). */
export interface ConformanceCase {
  readonly name: string;
  run(fx: StorageDriverFixture): Promise<void>;
}

/**
 * Asserts that the promise `call()` returns rejects with a DisklessError of exactly `code`.
 * A method that throws synchronously instead fails the assertion: every driver and device
 * method returns a Promise, and callers chain `.catch` on it.
 */
export async function rejectsWith(call: () => Promise<unknown>, code: ErrorCode, what: string): Promise<unknown> {
  let pending: Promise<unknown>;
  try {
    pending = call();
  } catch (err) {
    assert.fail(`${what}: threw ${isDisklessError(err) ? err.code : String(err)} synchronously instead of returning a rejected Promise`);
  }
  let caught: unknown;
  try {
    await pending;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== undefined, `${what}: expected ${code}, but it succeeded`);
  assert.ok(isDisklessError(caught), `${what}: expected DisklessError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, `${what}: expected ${code}, got ${caught.code} (${caught.message})`);
  return caught;
}

/**
 * Asserts `actual` is `expected` give or take what block-allocation granularity and metadata
 * can explain: 10% of `expected` plus `slack` bytes (default 512 KiB). Space figures of a
 * copy-on-write store are rounded to its extent or record size, never off by whole megabytes.
 */
export function assertAbout(actual: number, expected: number, what: string, slack = 512 * KiB): void {
  const margin = expected * 0.1 + slack;
  assert.ok(Number.isSafeInteger(actual) && actual >= 0, `${what}: ${actual} is not a byte count`);
  assert.ok(Math.abs(actual - expected) <= margin, `${what}: ${actual} bytes, expected about ${expected} (± ${Math.round(margin)})`);
}

/** Writes the pattern of `seed` over [offset, offset + length) of `volume` in 1 MiB pieces, flushed, closed. */
export async function writePattern(driver: StorageDriver, volume: string, offset: number, length: number, seed: number): Promise<void> {
  const dev = await driver.open(volume);
  try {
    for (let at = offset; at < offset + length; at += MiB) {
      const n = Math.min(MiB, offset + length - at);
      await dev.write(at, pattern(at, n, seed));
    }
    await dev.flush();
  } finally {
    await dev.close();
  }
}

/** Reads [offset, offset + length) of a volume or, with `snapshot`, of one of its snapshots. */
export async function readRange(driver: StorageDriver, volume: string, offset: number, length: number, snapshot?: string): Promise<Buffer> {
  const dev = await driver.open(volume, snapshot === undefined ? {} : { snapshot });
  try {
    return await dev.read(offset, length);
  } finally {
    await dev.close();
  }
}

/** SHA-256 of a whole volume (or snapshot) read through `open` in 1 MiB pieces. */
export async function digest(driver: StorageDriver, volume: string, snapshot?: string): Promise<string> {
  const dev = await driver.open(volume, snapshot === undefined ? { readOnly: true } : { snapshot });
  try {
    const h = createHash('sha256');
    const buf = Buffer.alloc(MiB);
    for (let at = 0; at < dev.size; at += MiB) {
      const piece = buf.subarray(0, Math.min(MiB, dev.size - at));
      await dev.readInto(at, piece);
      h.update(piece);
    }
    return h.digest('hex');
  } finally {
    await dev.close();
  }
}

/** SHA-256 of `length` pattern bytes of `seed` at `offset`, laid over zeros in a `size`-byte volume. */
export function expectedDigest(size: number, layers: ReadonlyArray<{ offset: number; length: number; seed: number }>): string {
  const image = Buffer.alloc(size);
  for (const l of layers) pattern(l.offset, l.length, l.seed).copy(image, l.offset);
  return createHash('sha256').update(image).digest('hex');
}

/** SHA-256 of `image` followed by zeros up to `size` bytes. */
export function digestPadded(image: Buffer, size: number): string {
  const padded = Buffer.alloc(size);
  image.copy(padded);
  return createHash('sha256').update(padded).digest('hex');
}

/** Collects a send stream into one buffer. */
export async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk);
  return Buffer.concat(parts);
}

/** Replays `bytes` as a stream of `chunk`-byte pieces (copies, so the receiver may keep them). */
export async function* replay(bytes: Buffer, chunk = 64 * KiB): AsyncIterable<Buffer> {
  for (let at = 0; at < bytes.length; at += chunk) yield Buffer.from(bytes.subarray(at, Math.min(bytes.length, at + chunk)));
}

/** `bytes` with one byte flipped at `at` (a copy). */
export function flipByte(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] = copy[at]! ^ 0x5a;
  return copy;
}

/** Names, guids, clones and holds of every snapshot: what must not change when an operation is refused. */
export async function snapshotState(driver: StorageDriver, volume?: string): Promise<string[]> {
  return (await driver.listSnapshots(volume)).map((s) => `${s.volume}@${s.name} guid=${s.guid} clones=${s.clones.join(',')} holds=${s.holds.join(',')}`);
}
