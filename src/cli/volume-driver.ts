/**
 * How `diskless volume` and `diskless export iscsi` pick their storage from the command line:
 * `--pool DIR [--mirror DIR] [--capacity SIZE]` (embedded), `--zfs DATASET`, or else the
 * `storage:` section of `--config FILE` (built-in defaults without it: the file driver in
 * /var/lib/diskless/volumes, as `serve` uses). One function decides; the driver is always closed.
 */
import type { Command } from 'commander';
import { stat } from 'node:fs/promises';
import { loadConfigFile, validateConfig } from '../config/load-config.js';
import { openStorageDriver, storageChoiceFromConfig, type StorageChoice } from '../control/storage-choice.js';
import { DisklessError, isDisklessError } from '../errors/index.js';
import type { StorageDriver } from '../store/storage-driver.js';
import { parseSizeOption, usageError } from './volume-format.js';

/** The driver options as commander parsed them. */
export interface StorageFlags {
  readonly pool?: string;
  readonly mirror?: string;
  readonly capacity?: string;
  readonly zfs?: string;
  readonly config?: string;
}

/** Adds the storage options to a command (`volume`; `export iscsi` without --config). */
export function addStorageOptions(cmd: Command, withConfig = true): Command {
  cmd
    .option('--pool <dir>', 'embedded driver: the pool directory (created when missing)')
    .option('--mirror <dir>', 'embedded driver: a second copy of the pool, ideally on another disk (needs --pool)')
    .option('--capacity <size>', 'embedded driver: the most the pool may hold, e.g. 10G (needs --pool)')
    .option('--zfs <dataset>', 'zfs driver: volumes live under this dataset, e.g. tank/diskless');
  if (withConfig) cmd.option('-c, --config <file>', "without --pool/--zfs: use this configuration's storage section (default: built-in defaults)");
  return cmd;
}

/** True when the flags name a pool or dataset explicitly (`export iscsi` then takes a volume name). */
export function namesStorage(flags: StorageFlags): boolean {
  return flags.pool !== undefined || flags.zfs !== undefined;
}

/**
 * The storage the flags select. --zfs excludes the embedded options; --mirror and --capacity
 * need --pool; without either the configuration's `storage:` decides. USAGE on conflicts.
 */
export async function storageChoiceFromFlags(flags: StorageFlags): Promise<StorageChoice> {
  if (flags.zfs !== undefined) {
    for (const [option, value] of [['--pool', flags.pool], ['--mirror', flags.mirror], ['--capacity', flags.capacity]] as const) {
      if (value !== undefined) throw usageError(`option ${option}`, value, 'either --zfs DATASET or --pool DIR [--mirror DIR] [--capacity SIZE], not both');
    }
    if (!/^[a-zA-Z0-9][a-zA-Z0-9._:-]*(\/[a-zA-Z0-9][a-zA-Z0-9._:-]*)*$/.test(flags.zfs)) throw usageError('option --zfs', flags.zfs, 'a ZFS dataset name such as tank/diskless');
    return { driver: 'zfs', dataset: flags.zfs };
  }
  if (flags.pool !== undefined) {
    if (flags.pool === '') throw usageError('option --pool', '', 'a directory path');
    if (flags.mirror === '') throw usageError('option --mirror', '', 'a directory path');
    return {
      driver: 'embedded',
      pool: flags.pool,
      ...(flags.mirror === undefined ? {} : { mirror: flags.mirror }),
      ...(flags.capacity === undefined ? {} : { capacity: parseSizeOption('--capacity', flags.capacity) }),
    };
  }
  if (flags.mirror !== undefined) throw usageError('option --mirror', flags.mirror, 'a mirror of the pool given with --pool DIR');
  if (flags.capacity !== undefined) throw usageError('option --capacity', flags.capacity, 'the capacity of the pool given with --pool DIR');
  const config = flags.config === undefined ? validateConfig({}, '<defaults>') : await loadConfigFile(flags.config);
  return storageChoiceFromConfig(config);
}

/** Store errors that mean "the argument is wrong" (exit 2) rather than "the operation failed". */
const INPUT_ERRORS = new Set(['STORE_INVALID_NAME', 'STORE_INVALID_SIZE']);

/**
 * An embedded pool directory that must already exist: only the commands that make volumes
 * (create, import, receive) may start a new pool, so a mistyped --pool is not silently a new,
 * empty one.
 */
export async function assertPoolExists(choice: StorageChoice, flags: StorageFlags): Promise<void> {
  if (choice.driver !== 'embedded') return;
  const exists = await stat(choice.pool).then((s) => s.isDirectory(), () => false);
  if (exists) return;
  const what = flags.pool !== undefined ? 'option --pool' : 'storage.pool (from the configuration)';
  throw usageError(what, choice.pool, 'an existing pool directory (create, import and receive start a new pool)', 'no such directory');
}

/**
 * Opens the selected driver, runs `fn`, and always closes it. Unless `newPool`, an embedded
 * pool must exist already. A bad name or size reported by the driver becomes USAGE (exit
 * status 2) with the driver's message.
 */
export async function withStorage<T>(flags: StorageFlags, fn: (driver: StorageDriver) => Promise<T>, options: { readonly newPool?: boolean } = {}): Promise<T> {
  const choice = await storageChoiceFromFlags(flags);
  if (!options.newPool) await assertPoolExists(choice, flags);
  const driver = await openStorageDriver(choice);
  try {
    return await fn(driver);
  } catch (err) {
    if (isDisklessError(err) && INPUT_ERRORS.has(err.code)) throw new DisklessError('USAGE', err.message, { ...err.data, storeCode: err.code }, { cause: err });
    throw err;
  } finally {
    await driver.close();
  }
}
