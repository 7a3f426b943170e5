import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDisklessError } from '../errors/index.js';
import { createNamespace, createVethPair, deleteNamespace, ip } from '../lab/netns.js';
import { CLI, runCli } from '../../test/support/run-cli.js';
import { startRawPeer } from '../../test/support/raw-peer-client.js';
import { decodeAoeFrame } from '../wire/aoe/aoe-frame.js';
import { EtherType } from '../wire/ethernet/ethernet-frame.js';
import { parseExportAoeOptions } from './export-aoe-command.js';
import { parseMac } from './option-values.js';
import { AoeInitiator } from '../clients/aoe/aoe-initiator.js';
import { createVbladeSegment } from '../../test/support/vblade-segment.js';

/** Resolves once `export aoe` prints `serving ADDRESS on`; what it printed so far stays readable in `text`. */
async function untilServing(child: ChildProcessByStdio<null, Readable, Readable>, address: string): Promise<{ readonly text: string }> {
  const output = { text: '' };
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  await new Promise<void>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`export did not start: ${output.text} ${err}`)), 15_000);
    child.stdout.on('data', (d) => {
      output.text += d;
      if (output.text.includes(`serving ${address} on `)) {
        clearTimeout(timer);
        done();
      }
    });
    child.once('exit', (code) => fail(new Error(`export exited with ${code}: ${err}`)));
  });
  return output;
}

const flags = { readOnly: false, blockSize: '512', sync: false, direct: false, bufferCount: '64', logLevel: 'warn' };

test('parseExportAoeOptions: required options, ranges and MACs are checked, naming the option', () => {
  const o = parseExportAoeOptions('disk.img', { ...flags, iface: 'br0,br1,br0', shelf: '65534', slot: '254', allow: '52-54-00-AA-bb-01,525400aabb02' });
  assert.deepEqual(o.interfaces, ['br0', 'br1']);
  assert.deepEqual(o.allow, ['52:54:00:aa:bb:01', '52:54:00:aa:bb:02']);
  const refused = (f: Record<string, string | boolean | undefined>, option: string) =>
    assert.throws(() => parseExportAoeOptions('disk.img', { ...flags, iface: 'br0', shelf: '1', slot: '1', ...f }), (e: unknown) => isDisklessError(e, 'USAGE') && e.message.startsWith(`option ${option}:`));
  refused({ iface: undefined }, '--iface');
  refused({ shelf: undefined }, '--shelf');
  refused({ shelf: '65535' }, '--shelf');
  refused({ slot: '255' }, '--slot');
  refused({ slot: '-1' }, '--slot');
  refused({ allow: '52:54:00:aa:bb' }, '--allow');
  refused({ allow: '01:00:5e:00:00:01' }, '--allow');
  refused({ blockSize: '1024' }, '--block-size');
  refused({ bufferCount: '0' }, '--buffer-count');
  assert.equal(parseExportAoeOptions('disk.img', { ...flags, iface: 'br0', shelf: '1', slot: '1', direct: true }).direct, true);
  assert.equal(parseMac('--allow', 'AA:BB:CC:DD:EE:F0'), 'aa:bb:cc:dd:ee:f0');
});

test('diskless export aoe: usage errors exit 2; a missing interface is named', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'export-aoe-'));
  const file = join(dir, 'disk.img');
  writeFileSync(file, Buffer.alloc(1 << 20));
  const noIface = await runCli(['export', 'aoe', file, '--shelf', '1', '--slot', '2']);
  assert.equal(noIface.code, 2);
  assert.match(noIface.stderr, /option --iface/);
  const missing = await runCli(['export', 'aoe', file, '--iface', 'nosuch-aoe0', '--shelf', '1', '--slot', '2']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /nosuch-aoe0/);
  assert.equal(existsSync(`${file}.aoe.json`), false, 'nothing written before the interface is known');
  rmSync(dir, { recursive: true, force: true });
});

test('diskless export aoe: serves a file on a veth until SIGTERM, announces it, keeps its state beside the file', { timeout: 60_000 }, async () => {
  const tag = String(process.pid % 100000);
  const ns = `dn-xa-${tag}`;
  const local = `dn-xa${tag}`;
  const remote = `dn-xb${tag}`;
  const dir = mkdtempSync(join(tmpdir(), 'export-aoe-'));
  const file = join(dir, 'disk.img');
  writeFileSync(file, Buffer.alloc(1 << 20, 7));
  await deleteNamespace(ns);
  await ip('link', 'del', local).catch(() => undefined);
  await createNamespace(ns);
  await createVethPair(local, remote, undefined, ns);
  const peer = await startRawPeer(ns, remote, EtherType.aoe);
  try {
    const child = spawn(process.execPath, [CLI, 'export', 'aoe', file, '--iface', local, '--shelf', '9', '--slot', '8'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const output = await untilServing(child, 'e9.8');
    assert.match(output.text, /exporting .*disk\.img \(1048576 bytes, 512-byte blocks\) as e9\.8, 64 buffers/);
    assert.match(output.text, /MTU 1500, 2 sectors per frame/);
    let frames: string[] = [];
    for (let i = 0; i < 50 && frames.length === 0; i++) {
      frames = (await peer.request({ op: 'received' })).frames ?? [];
      if (frames.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    const announce = decodeAoeFrame(Buffer.from(frames[0]!, 'hex'));
    assert.equal(announce.header.shelf, 9);
    assert.equal(announce.header.slot, 8);
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.match(output.text, /stopping/);
    assert.equal(JSON.parse(readFileSync(`${file}.aoe.json`, 'utf8')).format, 'diskless-aoe-target');
  } finally {
    await peer.stop();
    await deleteNamespace(ns);
    await ip('link', 'del', local).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('diskless export aoe --direct: our initiator reads and writes a file through it, past the page cache', { timeout: 90_000 }, async () => {
  const size = 2 * 1024 * 1024;
  const seg = await createVbladeSegment({ sizeBytes: size, seed: 11 });
  const child = spawn('ip', ['netns', 'exec', seg.ns, process.execPath, CLI, 'export', 'aoe', seg.file, '--iface', seg.farIf, '--shelf', '3', '--slot', '1', '--direct', '--state', join(seg.dir, 'state.json')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const aoe = new AoeInitiator({ ifname: seg.nearIf, shelf: 3, slot: 1 });
  try {
    const output = await untilServing(child, 'e3.1');
    assert.match(output.text, /\(2097152 bytes, (512|4096)-byte blocks, direct I\/O\) as e3\.1/);
    const expected = readFileSync(seg.file);
    assert.ok((await aoe.read(0, size / 512)).equals(expected), 'the whole file, read with many commands in flight');
    // Writes of 1-3 sectors at odd sectors (inside a 4096-byte block when that is the alignment), then read back.
    for (const [lba, sectors] of [[1, 1], [7, 3], [4093, 2], [1000, 2]] as const) {
      const data = Buffer.alloc(sectors * 512, lba & 0xff);
      await aoe.write(lba, data);
      data.copy(expected, lba * 512);
    }
    assert.ok((await aoe.read(0, size / 512)).equals(expected));
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.ok(readFileSync(seg.file).equals(expected), 'the file holds every write');
  } finally {
    aoe.close();
    if (child.exitCode === null) child.kill('SIGKILL');
    await seg.stop();
  }
});
