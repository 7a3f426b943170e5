import { readFile, mkdir } from 'node:fs/promises';
import { writeFileDurably } from '../../store/write-file-durably.js';
import { join } from 'node:path';
import { DisklessError } from '../../errors/index.js';
import type { DeclinedAddress, Lease, LeaseSnapshot } from './lease-table.js';

/**
 * Persists the lease table in `<dataDir>/dhcp-leases.json` so a restart forgets no lease:
 * each save writes a temporary file, fsyncs it, renames it over the old one and fsyncs the
 * directory, so a crash leaves either the old or the new file, never a torn one. The server
 * awaits `save` before sending the ACK that depends on it. Saves are serialised; a save
 * requested while one runs is coalesced into the next write of the latest snapshot.
 */

/** File name inside the data directory. */
export const LEASE_FILE_NAME = 'dhcp-leases.json';
/** Version of the file format; bump on incompatible changes. */
export const LEASE_FILE_VERSION = 1;

interface LeaseFile {
  readonly version: number;
  readonly leases: readonly Lease[];
  readonly declined: readonly DeclinedAddress[];
}

const ipv4 = /^(\d{1,3}\.){3}\d{1,3}$/;

function validLease(l: unknown): l is Lease {
  if (typeof l !== 'object' || l === null) return false;
  const x = l as Record<string, unknown>;
  return (
    typeof x.clientKey === 'string' &&
    typeof x.mac === 'string' &&
    typeof x.address === 'string' &&
    ipv4.test(x.address) &&
    (x.state === 'bound' || x.state === 'released') &&
    typeof x.expiresAt === 'number' &&
    (x.hostname === undefined || typeof x.hostname === 'string')
  );
}

function validDeclined(d: unknown): d is DeclinedAddress {
  if (typeof d !== 'object' || d === null) return false;
  const x = d as Record<string, unknown>;
  return typeof x.address === 'string' && ipv4.test(x.address) && typeof x.until === 'number';
}

export class LeaseStore {
  readonly path: string;
  private writing: Promise<void> = Promise.resolve();
  private pending: LeaseSnapshot | undefined;
  private pendingDone: Promise<void> | undefined;

  constructor(dataDir: string) {
    this.path = join(dataDir, LEASE_FILE_NAME);
  }

  /**
   * Reads the file. A missing file is an empty table; anything else unreadable throws
   * DHCP_LEASE_STORE_CORRUPT (the server refuses to start rather than forget leases).
   */
  async load(): Promise<LeaseSnapshot> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { leases: [], declined: [] };
      throw err;
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new DisklessError('DHCP_LEASE_STORE_CORRUPT', `cannot read lease file ${this.path}: not valid JSON`, { path: this.path }, { cause: err });
    }
    const file = data as Partial<LeaseFile>;
    if (file?.version !== LEASE_FILE_VERSION || !Array.isArray(file.leases) || !Array.isArray(file.declined)) {
      throw new DisklessError('DHCP_LEASE_STORE_CORRUPT', `cannot read lease file ${this.path}: expected { version: ${LEASE_FILE_VERSION}, leases: [], declined: [] }`, {
        path: this.path,
        field: 'version',
        value: file?.version,
        allowed: LEASE_FILE_VERSION,
      });
    }
    const bad = file.leases.findIndex((l) => !validLease(l));
    if (bad !== -1) throw new DisklessError('DHCP_LEASE_STORE_CORRUPT', `cannot read lease file ${this.path}: leases[${bad}] is malformed`, { path: this.path, field: `leases[${bad}]` });
    const badD = file.declined.findIndex((d) => !validDeclined(d));
    if (badD !== -1) throw new DisklessError('DHCP_LEASE_STORE_CORRUPT', `cannot read lease file ${this.path}: declined[${badD}] is malformed`, { path: this.path, field: `declined[${badD}]` });
    return { leases: file.leases, declined: file.declined };
  }

  /** Durably writes `snapshot`; resolves once it is on disk. Concurrent calls coalesce. */
  save(snapshot: LeaseSnapshot): Promise<void> {
    this.pending = snapshot;
    if (!this.pendingDone) {
      this.pendingDone = this.writing.then(() => {
        const s = this.pending!;
        this.pending = undefined;
        this.pendingDone = undefined;
        return this.write(s);
      });
      this.writing = this.pendingDone.catch(() => undefined);
    }
    return this.pendingDone;
  }

  /** Resolves once every requested save has finished. */
  async flush(): Promise<void> {
    await this.writing;
  }

  private async write(snapshot: LeaseSnapshot): Promise<void> {
    const dir = join(this.path, '..');
    await mkdir(dir, { recursive: true });
    const body: LeaseFile = { version: LEASE_FILE_VERSION, leases: snapshot.leases, declined: snapshot.declined };
    await writeFileDurably(this.path, JSON.stringify(body, null, 1) + '\n', 0o644);
  }
}
