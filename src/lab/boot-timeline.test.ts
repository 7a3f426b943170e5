import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { BootTimeline, BootStage, type BootEvent } from './boot-timeline.js';
import { decodeTranscript, encodeTranscript, type ConsoleChunk } from './console-transcript.js';
import { ConsoleLines } from './console-lines.js';
import { isDisklessError } from '../errors/index.js';

// Fixtures are real QEMU consoles (SeaBIOS 1.16.2 + iPXE 1.0.0+git-20190125 e1000 ROM) recorded
// in the lab against dnsmasq + tgt, and OVMF ones (uefi-*: iPXE EFI ROM; uefi-native-pxe*:
// OVMF's own PXE client, against our server); tests run from dist/, fixtures stay in src/.
const here = dirname(fileURLToPath(import.meta.url));
const testdata = join(here, '..', '..', '..', 'src', 'lab', 'testdata');

function load(name: string): ConsoleChunk[] {
  const file = join(testdata, `${name}.console.jsonl`);
  return decodeTranscript(readFileSync(file, 'utf8'), file);
}

function replay(chunks: readonly ConsoleChunk[]): BootTimeline {
  const timeline = new BootTimeline();
  for (const c of chunks) timeline.feed(c.text, c.atMs);
  timeline.end(chunks.at(-1)?.atMs ?? 0);
  return timeline;
}

/** A readable, stable dump: one line per event. */
function dump(events: readonly BootEvent[]): string {
  return events.map((e) => `${String(e.atMs).padStart(6)} ${e.stage.padEnd(8)} ${JSON.stringify(e.detail)} ${JSON.stringify(e.line)}`).join('\n') + '\n';
}

const fixtures = readdirSync(testdata)
  .filter((f) => f.endsWith('.console.jsonl'))
  .map((f) => f.slice(0, -'.console.jsonl'.length))
  .sort();

test('every fixture matches its checked-in timeline dump (UPDATE_GOLDEN=1 rewrites)', () => {
  assert.ok(fixtures.length >= 5, `fixtures found: ${fixtures.join(', ')}`);
  for (const name of fixtures) {
    const actual = dump(replay(load(name)).events);
    const goldenFile = join(testdata, `${name}.timeline.txt`);
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(goldenFile, actual);
    assert.equal(actual, readFileSync(goldenFile, 'utf8'), name);
  }
});

test('untuned dnsmasq: DHCP completes only after iPXE gives up on IPv6 (~18 s), marker at 18.5 s', () => {
  const t = replay(load('bios-iscsi-untuned'));
  assert.equal(t.outcome, 'marker');
  assert.deepEqual(
    t.events.map((e) => e.stage),
    [BootStage.PowerOn, BootStage.Firmware, BootStage.Ipxe, BootStage.Nic, BootStage.Dhcp, BootStage.Script, BootStage.San, BootStage.Marker],
  );
  const firmware = t.events.find((e) => e.stage === BootStage.Firmware)!;
  assert.equal(firmware.detail.version, '1.16.2-debian-1.16.2-1');
  assert.equal(t.events.find((e) => e.stage === BootStage.Nic)!.detail.mac, '52:54:00:12:34:56');
  // The "Configuring ... ok" line starts at 2.3 s but its "ok" arrives at 18.4 s: the stage time is the latter.
  const dhcp = t.stageAt(BootStage.Dhcp)!;
  assert.ok(dhcp > 18_000 && dhcp < 18_500, `dhcp at ${dhcp}`);
  assert.equal(t.events.find((e) => e.stage === BootStage.Script)!.detail.url, 'tftp://10.77.0.1/boot.ipxe');
  assert.equal(t.events.find((e) => e.stage === BootStage.San)!.detail.device, '0x80');
  const marker = t.stageAt(BootStage.Marker)!;
  assert.ok(marker > 18_400 && marker < 18_600, `marker at ${marker}`);
});

test('tuned dnsmasq: DHCP done ~1 s after the NIC opens, marker ~3.3 s, new lease and later', () => {
  for (const name of ['bios-iscsi-tuned-new-lease', 'bios-iscsi-tuned-later']) {
    const t = replay(load(name));
    assert.equal(t.outcome, 'marker', name);
    const nic = t.stageAt(BootStage.Nic)!;
    const dhcp = t.stageAt(BootStage.Dhcp)!;
    assert.ok(dhcp - nic > 800 && dhcp - nic < 1500, `${name}: nic ${nic} dhcp ${dhcp}`);
    const marker = t.stageAt(BootStage.Marker)!;
    assert.ok(marker > 3_000 && marker < 3_700, `${name}: marker at ${marker}`);
    assert.equal(t.failure, undefined);
  }
});

test('an unknown iSCSI target fails with iPXE error 0f0d6039 and never reaches the marker', () => {
  const t = replay(load('bios-fail-unknown-target'));
  assert.equal(t.outcome, 'failed');
  assert.equal(t.failure?.detail.error, '0f0d6039');
  assert.match(t.failure!.line, /^Could not open SAN device/);
  assert.equal(t.stageAt(BootStage.Marker), undefined);
  assert.equal(t.stageAt(BootStage.San), undefined);
});

test('a missing script: the error URL wrapped at 80 columns is joined back (2d12603b)', () => {
  const t = replay(load('bios-fail-no-script'));
  assert.equal(t.outcome, 'failed');
  assert.equal(t.failure?.detail.error, '2d12603b');
  assert.equal(t.stageAt(BootStage.Script), undefined);
});

test('the stages found do not depend on how the stream is split (every split offset, byte by byte)', () => {
  for (const name of fixtures) {
    const chunks = load(name);
    const whole = replay(chunks).events.map((e) => `${e.stage} ${e.line}`);
    // One character per chunk, each at its chunk's time.
    const bytewise = new BootTimeline();
    for (const c of chunks) for (const ch of c.text) bytewise.feed(ch, c.atMs);
    bytewise.end(chunks.at(-1)!.atMs);
    assert.deepEqual(bytewise.events.map((e) => `${e.stage} ${e.line}`), whole, `${name} bytewise`);
    // The whole transcript joined and cut in two at every offset (stage set and lines must agree).
    const text = chunks.map((c) => c.text).join('');
    for (let cut = 0; cut <= text.length; cut += 7) {
      const t = new BootTimeline();
      t.feed(text.slice(0, cut), 0);
      t.feed(text.slice(cut), 1);
      t.end(1);
      assert.deepEqual(t.events.map((e) => `${e.stage} ${e.line}`), whole, `${name} cut at ${cut}`);
    }
  }
});

test('a marker printed without a line end is seen at once, also split across chunks', () => {
  const t = new BootTimeline({ marker: 'DISKLESS-OK' });
  assert.deepEqual(t.feed('Booting from SAN device 0x8DISK', 100), []);
  const ev = t.feed('LESS-OK', 120);
  assert.equal(ev.length, 1);
  assert.equal(ev[0]!.stage, BootStage.Marker);
  assert.equal(ev[0]!.atMs, 120);
  assert.equal(t.outcome, 'marker');
  // Nothing after the marker turns the outcome into a failure.
  t.feed('\r\nNo more network devices\r\n', 200);
  assert.equal(t.outcome, 'marker');
});

test('a failure before the marker is final; times never go backwards', () => {
  const t = new BootTimeline();
  t.feed('Configuring (net0 52:54:00:12:34:56)...... No configuration methods succeeded (http://ipxe.org/040ee186)\r\n', 30_000);
  assert.equal(t.outcome, 'failed');
  assert.equal(t.failure?.detail.error, '040ee186');
  t.feed('DISKLESS-OK\r\n', 10);
  assert.equal(t.outcome, 'failed');
  assert.equal(t.stageAt(BootStage.Marker), undefined);
  // A newer iPXE prints https://ipxe.org/err/<code>.
  const n = new BootTimeline();
  n.feed('Could not boot: Connection timed out (https://ipxe.org/err/4c126035)\n', 5);
  assert.equal(n.failure?.detail.error, '4c126035');
});

test('ANSI: colour codes, erase-line and cursor positioning leave only the visible text', () => {
  const lines = new ConsoleLines();
  const u = lines.write('\x1b[0;1miPXE\x1b[0m ok\r\nabcdef\x1b[3D\x1b[K\r\n\x1b[5;1HBdsDxe: loading Boot0001\x1b[6;1Hnext');
  assert.deepEqual(u.completed, ['iPXE ok', 'abc', 'BdsDxe: loading Boot0001']);
  assert.equal(u.partial, 'next');
  // The escape sequence may be split anywhere.
  const split = new ConsoleLines();
  split.write('a\x1b');
  split.write('[0');
  const v = split.write(';36mb\n');
  assert.deepEqual(v.completed, ['ab']);
});

test('backspaces overwrite: the NIC line printed over the Ctrl-B prompt', () => {
  const prompt = 'Press Ctrl-B for the iPXE command line...';
  const erase = '\b \b'.repeat(prompt.length);
  const t = new BootTimeline();
  t.feed(prompt, 300);
  t.feed(erase + 'net0: 52:54:00:12:34:56 using 82540em on 0000:00:03.0 (open)\r\n', 2300);
  const nic = t.events.find((e) => e.stage === BootStage.Nic);
  assert.equal(nic?.line, 'net0: 52:54:00:12:34:56 using 82540em on 0000:00:03.0 (open)');
  assert.equal(nic?.atMs, 2300);
});

test('transcripts round-trip; a malformed line is LAB_TRANSCRIPT_INVALID', () => {
  const chunks = load('bios-iscsi-tuned-later');
  assert.deepEqual(decodeTranscript(encodeTranscript(chunks)), chunks);
  for (const bad of ['[1]', '{"a":1}', '[1, 2]', '["1", "x"]', '[-1, "x"]', 'not json']) {
    assert.throws(() => decodeTranscript(`[0,"ok"]\n${bad}\n`), (e) => isDisklessError(e, 'LAB_TRANSCRIPT_INVALID') && e.data.line === 2);
  }
});

test('no DHCP server: "No configuration methods succeeded" wrapped after a trailing space, error 040ee119', () => {
  const t = replay(load('bios-fail-no-dhcp'));
  assert.equal(t.outcome, 'failed');
  assert.equal(t.failure?.detail.error, '040ee119');
  assert.match(t.failure!.line, /No configuration methods succeeded \(http:\/\/ipxe\.org\/040ee119\)$/);
  assert.equal(t.stageAt(BootStage.Dhcp), undefined);
  assert.ok(t.failure!.atMs > 18_000, `iPXE gives up on DHCP after ~16 s: ${t.failure!.atMs}`);
});

test('UEFI (OVMF + iPXE EFI ROM): firmware is the first BdsDxe line; sanboot of an MBR-only disk fails 7f22208e', () => {
  const t = replay(load('uefi-fail-mbr-only'));
  assert.equal(t.outcome, 'failed');
  assert.equal(t.failure?.detail.error, '7f22208e');
  assert.match(t.failure!.line, /^Boot from SAN device 0x80 failed/);
  assert.deepEqual(
    t.events.map((e) => e.stage),
    [BootStage.PowerOn, BootStage.Firmware, BootStage.Ipxe, BootStage.Nic, BootStage.Dhcp, BootStage.Script, BootStage.San, BootStage.Failure],
  );
  assert.match(t.events.find((e) => e.stage === BootStage.Firmware)!.line, /^BdsDxe: /);
});

test('NIC statistics after "(open)" carry an error URL but are no failure (seen under OVMF)', () => {
  const t = new BootTimeline();
  t.feed('net0: 52:54:00:12:34:56 using 82540em on 0000:00:03.0 (open)\r\n  [Link:up, TX:1 TXE:0 RX:6 RXE:5]\r\n', 7206);
  t.feed('  [RXE: 5 x "Operation not supported (http://ipxe.org/3c046083)"]\r\n', 7207);
  assert.equal(t.outcome, 'running');
  t.feed('Configuring (net0 52:54:00:12:34:56).... ok\r\n', 8200);
  assert.equal(t.stageAt(BootStage.Dhcp), 8200);
});

test('UEFI firmware PXE (OVMF, virtio NIC without ROM): pxe, pxe-dhcp and nbp stages, then iPXE from TFTP to the marker', () => {
  const t = replay(load('uefi-native-pxe'));
  assert.equal(t.outcome, 'marker');
  assert.deepEqual(
    t.events.map((e) => e.stage),
    [BootStage.PowerOn, BootStage.Firmware, BootStage.Pxe, BootStage.PxeDhcp, BootStage.Nbp, BootStage.Ipxe, BootStage.Nic, BootStage.Dhcp, BootStage.Script, BootStage.San, BootStage.Marker],
  );
  const at = (s: BootStage) => t.stageAt(s)!;
  // ">>Start PXE over IPv4." is left open until DHCP is done: the stage is when it appeared.
  assert.ok(at(BootStage.Pxe) - at(BootStage.Firmware) < 100, `pxe at ${at(BootStage.Pxe)}`);
  // EDK2 collects DHCP offers for its whole first 4 s discover timeout (PXE 2.1) before it requests.
  const dhcp = at(BootStage.PxeDhcp) - at(BootStage.Pxe);
  assert.ok(dhcp > 3_000 && dhcp < 4_500, `firmware DHCP took ${dhcp} ms`);
  const nbp = t.events.find((e) => e.stage === BootStage.Nbp)!;
  assert.deepEqual(nbp.detail, { file: 'ipxe.efi', size: '850528' });
  assert.ok(at(BootStage.Nbp) - at(BootStage.PxeDhcp) < 500, 'TFTP of 850 KB with windowsize 4');
  assert.equal(t.events.find((e) => e.stage === BootStage.PxeDhcp)!.detail.address, '10.77.0.100');
});

test('UEFI firmware PXE with no DHCP server: PXE-E18 after EDK2 gives up (4+8+16+32 s of retries)', () => {
  const t = replay(load('uefi-native-pxe-fail-no-dhcp'));
  assert.equal(t.outcome, 'failed');
  assert.equal(t.failure?.detail.error, 'E18');
  assert.match(t.failure!.line, /PXE-E18: Server response timeout\./);
  assert.ok(t.stageAt(BootStage.Pxe)! < 3_500, 'the pxe stage is dated when the text appeared, not when its line ended');
  assert.ok(t.failure!.atMs > 60_000, `gave up at ${t.failure!.atMs}`);
  assert.equal(t.stageAt(BootStage.PxeDhcp), undefined);
});
