/**
 * ONE conformance suite for every `StorageDriver` (restic's backend/test is the model): a list
 * of named cases, each run against a fresh, empty storage from the runner's factory, so cases
 * are independent of each other and of order. A runner file per driver calls
 * `defineStorageConformance` with its factory:
 *
 *   defineStorageConformance('embedded', async () => { ...; return { driver, reopen, cleanup }; });
 *
 * Cases for optional features check `driver.capabilities`: where a flag is false they assert
 * that the calls throw STORE_UNSUPPORTED (a driver must never silently do nothing), so every
 * case runs, none is skipped.
 */
import { describe, test } from 'node:test';
import type { ConformanceCase, StorageDriverFactory } from './conformance-support.js';
import { snapshotCases } from './snapshot-cases.js';
import { spaceCases } from './space-cases.js';
import { streamCases } from './stream-cases.js';
import { volumeCases } from './volume-cases.js';

export type { StorageDriverFactory, StorageDriverFixture } from './conformance-support.js';

/** Every case, in the order they are registered. */
export const conformanceCases: readonly ConformanceCase[] = [...volumeCases, ...snapshotCases, ...spaceCases, ...streamCases];

/** Options of `defineStorageConformance`. */
export interface ConformanceOptions {
  /** Per-case timeout in ms (default 60 000; a zfs-fuse pool is slower than a directory). */
  readonly timeoutMs?: number;
}

/** Registers one node:test suite named `storage conformance: <label>` with every case. */
export function defineStorageConformance(label: string, makeDriver: StorageDriverFactory, options: ConformanceOptions = {}): void {
  describe(`storage conformance: ${label}`, () => {
    for (const c of conformanceCases) {
      test(c.name, { timeout: options.timeoutMs ?? 60_000 }, async () => {
        const fx = await makeDriver();
        try {
          await c.run(fx);
        } finally {
          await fx.cleanup();
        }
      });
    }
  });
}
