import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDisklessError } from '../../errors/index.js';
import { LEASE_FILE_NAME, LeaseStore } from './lease-store.js';
import { LeaseTable } from './lease-table.js';

const T0 = 1_700_000_000_000;
const pool = { poolStart: '10.77.0.100', poolEnd: '10.77.0.199' };

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'dd-leases-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a missing lease file is an empty table', async (t) => {
  const store = new LeaseStore(tempDir(t));
  assert.deepEqual(await store.load(), { leases: [], declined: [] });
});

test('bound, released and declined survive a restart; offers do not; no temp file is left', async (t) => {
  const dir = tempDir(t);
  const table = new LeaseTable(pool);
  table.bind('01aa', 'aa:00:00:00:00:01', '10.77.0.100', T0, 3_600_000, 'node1');
  table.bind('01bb', 'aa:00:00:00:00:02', '10.77.0.101', T0, 3_600_000);
  table.release('01bb', '10.77.0.101', T0 + 10);
  table.offer('01cc', 'aa:00:00:00:00:03', '10.77.0.102', T0, 60_000);
  table.decline('01dd', '10.77.0.150', T0, 600_000);
  await new LeaseStore(dir).save(table.snapshot(T0 + 20));
  assert.deepEqual(readdirSync(dir), [LEASE_FILE_NAME]);

  const restored = new LeaseTable(pool, await new LeaseStore(dir).load());
  assert.deepEqual(restored.leaseOf('01aa'), { clientKey: '01aa', mac: 'aa:00:00:00:00:01', address: '10.77.0.100', state: 'bound', expiresAt: T0 + 3_600_000, hostname: 'node1' });
  assert.equal(restored.leaseOf('01bb')?.state, 'released');
  assert.equal(restored.leaseOf('01cc'), undefined);
  assert.equal(restored.isDeclined('10.77.0.150', T0 + 30), true);
  // a new client cannot take the restored bound lease, the released one comes after fresh addresses
  assert.equal(restored.allocate('01ee', T0 + 30), '10.77.0.102');
  assert.equal(restored.isAvailable('10.77.0.100', '01ee', T0 + 30), false);
  assert.equal(restored.allocate('01aa', T0 + 30), '10.77.0.100');
});

test('concurrent saves coalesce and the last snapshot wins', async (t) => {
  const dir = tempDir(t);
  const store = new LeaseStore(dir);
  const table = new LeaseTable(pool);
  const saves: Promise<void>[] = [];
  for (let i = 0; i < 20; i++) {
    table.bind(`01${i.toString(16).padStart(2, '0')}`, 'aa:00:00:00:00:01', `10.77.0.${100 + i}`, T0, 3_600_000);
    saves.push(store.save(table.snapshot(T0)));
  }
  await Promise.all(saves);
  assert.equal((await store.load()).leases.length, 20);
});

test('a corrupt or foreign lease file is DHCP_LEASE_STORE_CORRUPT, never silently emptied', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, LEASE_FILE_NAME);
  for (const body of ['{not json', '{"version":2,"leases":[],"declined":[]}', '{"version":1,"leases":[{"address":"x"}],"declined":[]}', '[]']) {
    writeFileSync(path, body);
    await assert.rejects(new LeaseStore(dir).load(), (e: unknown) => isDisklessError(e, 'DHCP_LEASE_STORE_CORRUPT'), body);
    assert.equal(readFileSync(path, 'utf8'), body, 'the file is left for the operator');
  }
});
