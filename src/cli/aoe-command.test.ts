/**
 * `diskless aoe`: the option checks (exit 2, the option and value named, error code USAGE) and
 * the built command run with `ip netns exec` against a real vblade, both ends of the veth pair
 * inside namespace aoeini-<pid>-<n> (test/support/vblade-segment.ts). Needs root.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { firstPatternMismatch, pattern } from '../../test/support/block-pattern.js';
import { CLI, runCli } from '../../test/support/run-cli.js';
import { createVbladeSegment } from '../../test/support/vblade-segment.js';
import { parseAoeAddress, parseBytes, parseMacList } from './aoe-command.js';

const SEED = 0xa0e;
const SIZE = 4 * 1024 * 1024;

/** `diskless ARGS` inside `ns`; stdout as bytes. */
function cliIn(ns: string, args: readonly string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns, process.execPath, CLI, ...args], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr: stderr.toString() });
    });
  });
}

test('parseAoeAddress takes eSHELF.SLOT below the broadcast values, nothing else', () => {
  assert.deepEqual(parseAoeAddress('e0.0'), { shelf: 0, slot: 0 });
  assert.deepEqual(parseAoeAddress('e65534.254'), { shelf: 65534, slot: 254 });
  for (const bad of ['e65535.1', 'e1.255', '1.1', 'e1', 'e1.1.1', 'E1.1', 'e-1.1', 'e1.x']) {
    assert.throws(() => parseAoeAddress(bad), (e: unknown) => (e as { code?: string }).code === 'USAGE' && (e as { data: { value: string } }).data.value === bad, bad);
  }
});

test('parseMacList and parseBytes name the option and the value', () => {
  assert.deepEqual(parseMacList('--add', '52:54:00:12:34:56,02-00-00-00-00-01').map((b) => b.toString('hex')), ['525400123456', '020000000001']);
  assert.throws(() => parseMacList('--add', '52:54:00:12:34'), (e: unknown) => (e as { data: { field: string } }).data.field === 'option --add');
  assert.equal(parseBytes('--offset', '1M'), 1024 * 1024);
  assert.throws(() => parseBytes('--offset', '100', 512), (e: unknown) => (e as { code?: string }).code === 'USAGE');
  assert.throws(() => parseBytes('--length', 'lots'), (e: unknown) => (e as { data: { field: string } }).data.field === 'option --length');
});

test('bad input exits 2 with `error USAGE:` naming the field and value', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['aoe', 'read', 'e1.x', '--iface', 'lo'], /argument TARGET: value "e1\.x"/],
    [['aoe', 'read', 'e1.1'], /option --iface/],
    [['aoe', 'read', 'e1.1', '--iface', 'lo', '--offset', 'ten'], /option --offset: value "ten"/],
    [['aoe', 'write', 'e1.1', '--iface', 'lo', '--in', '/nonexistent/file'], /option --in: value "\/nonexistent\/file"/],
    [['aoe', 'write', 'e1.1', '--iface', 'lo', '--in', '/etc/hostname', '--offset', '100'], /option --offset: value "100".*multiple of 512/],
    [['aoe', 'discover', '--iface', 'lo', '--wait-ms', '-5'], /option --wait-ms/],
    [['aoe', 'discover', '--iface', 'lo', '--window', '0'], /option --window: value "0"/],
    [['aoe', 'mask', 'e1.1', '--iface', 'lo', '--delete', 'zz'], /option --delete: value "zz"/],
    [['aoe', 'discover', '--iface', 'no-such-if0'], /option --iface: value "no-such-if0"/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^error USAGE: /, args.join(' '));
    assert.match(r.stderr, message, args.join(' '));
  }
});

describe('diskless aoe against vblade, inside a namespace', { timeout: 120_000 }, () => {
  test('discover, identify, read (stdout and file, unaligned range), write, mask', async () => {
    const seg = await createVbladeSegment({ sizeBytes: SIZE, seed: SEED, nearInNamespace: true });
    try {
      await seg.startVblade({ shelf: 2, slot: 3, mask: [seg.nearMac] });
      const common = ['--iface', seg.nearIf];

      const discover = await cliIn(seg.ns, ['aoe', 'discover', ...common, '--wait-ms', '300', '--json']);
      assert.equal(discover.code, 0, discover.stderr);
      assert.deepEqual(
        (JSON.parse(discover.stdout.toString()) as Array<Record<string, unknown>>).map((t) => [t.target, t.mac, t.sectorCount, t.bufferCount]),
        [['e2.3', seg.farMac, 2, 16]],
      );

      const identify = await cliIn(seg.ns, ['aoe', 'identify', 'e2.3', ...common, '--json']);
      assert.equal(identify.code, 0, identify.stderr);
      const id = JSON.parse(identify.stdout.toString()) as Record<string, unknown>;
      assert.deepEqual([id.sectors, id.bytes, id.lba48, id.model], [SIZE / 512, SIZE, true, 'Coraid EtherDrive vblade']);

      const whole = await cliIn(seg.ns, ['aoe', 'read', 'e2.3', ...common, '--stats']);
      assert.equal(whole.code, 0, whole.stderr);
      assert.equal(whole.stdout.length, SIZE);
      assert.equal(firstPatternMismatch(whole.stdout, 0, SEED), -1);
      assert.match(whole.stderr, /^read 4194304 bytes in [\d.]+ s: [\d.]+ MB\/s/);

      const part = await cliIn(seg.ns, ['aoe', 'read', 'e2.3', ...common, '--offset', '1001', '--length', '1234567']);
      assert.equal(part.code, 0, part.stderr);
      assert.ok(part.stdout.equals(pattern(0, SIZE, SEED).subarray(1001, 1001 + 1234567)));

      const outFile = join(seg.dir, 'out.bin');
      const toFile = await cliIn(seg.ns, ['aoe', 'read', 'e2.3', ...common, '--offset', '2M', '--length', '512K', '--out', outFile]);
      assert.equal(toFile.code, 0, toFile.stderr);
      assert.equal(firstPatternMismatch(readFileSync(outFile), 2 * 1024 * 1024, SEED), -1);

      // 1.5 MiB + 100 bytes at 64 KiB: the last partial sector keeps the target's bytes after the input
      const input = pattern(0, 1536 * 1024 + 100, SEED + 1);
      const inFile = join(seg.dir, 'in.bin');
      writeFileSync(inFile, input);
      const write = await cliIn(seg.ns, ['aoe', 'write', 'e2.3', ...common, '--in', inFile, '--offset', '64K']);
      assert.equal(write.code, 0, write.stderr);
      const expected = pattern(0, SIZE, SEED);
      input.copy(expected, 64 * 1024);
      assert.ok(readFileSync(seg.file).equals(expected), 'the backing file holds the input at 64 KiB and nothing else changed');

      const mask = await cliIn(seg.ns, ['aoe', 'mask', 'e2.3', ...common, '--add', '02:00:00:00:00:07']);
      assert.equal(mask.code, 0, mask.stderr);
      assert.equal(mask.stdout.toString(), `${seg.nearMac}\n02:00:00:00:00:07\n`);

      const missing = await cliIn(seg.ns, ['aoe', 'read', 'e2.4', ...common, '--timeout-ms', '50', '--tries', '2']);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /^error AOE_TIMEOUT: /);
      assert.equal(missing.stdout.length, 0);
    } finally {
      await seg.stop();
    }
  });
});
