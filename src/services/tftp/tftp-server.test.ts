/**
 * TftpServer on loopback with a raw client (test/support/tftp-client.ts): negotiation, modes,
 * every refusal path with its ERROR code and metric, retransmission and abort, concurrency,
 * stop. atftp and curl interop is in test/interop/tftp-atftp.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rawFetch, readRequest } from '../../../test/support/tftp-client.js';
import { isDisklessError } from '../../errors/index.js';
import { silentLogger } from '../../observe/logger.js';
import { Metrics } from '../../observe/metrics.js';
import { decodeTftpPacket, encodeAck, encodeError, encodeTftpPacket, TftpErrorCode, TftpOpcode } from '../../wire/tftp/tftp-packet.js';
import { toNetascii } from './block-source.js';
import { TftpServer, type TftpServerOptions } from './tftp-server.js';

const dir = mkdtempSync(join(tmpdir(), 'dt-tftp-'));
const root = join(dir, 'root');
const files = { odd: randomBytes(5001), exact: randomBytes(512), text: Buffer.from('line one\nline two\r\nend\rx') };
let metrics: Metrics;
let server: TftpServer;

async function startServer(o: Partial<TftpServerOptions> = {}): Promise<{ server: TftpServer; metrics: Metrics }> {
  const m = new Metrics();
  const s = new TftpServer({ root, address: '127.0.0.1', port: 0, timeoutMs: 200, retries: 2, log: silentLogger(), metrics: m, ...o });
  await s.start();
  return { server: s, metrics: m };
}

before(async () => {
  mkdirSync(join(root, 'sub', 'dir'), { recursive: true });
  writeFileSync(join(root, 'odd.bin'), files.odd);
  writeFileSync(join(root, 'exact.bin'), files.exact);
  writeFileSync(join(root, 'empty'), '');
  writeFileSync(join(root, 'text.txt'), files.text);
  writeFileSync(join(root, 'sub', 'dir', 'file'), files.odd);
  writeFileSync(join(root, 'CaSe'), 'upper');
  writeFileSync(join(dir, 'secret'), 'outside the root');
  symlinkSync('odd.bin', join(root, 'link-in'));
  symlinkSync(join(dir, 'secret'), join(root, 'link-out'));
  symlinkSync(dir, join(root, 'dir-link-out'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  execFileSync('mknod', [join(root, 'null'), 'c', '1', '3']);
  ({ server, metrics } = await startServer());
});

after(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

const fetch = (name: string, options: Record<string, string> = {}, windowSize = 1, mode = 'octet') => rawFetch(readRequest(name, options, mode), { port: server.port, windowSize });

test("iPXE's request: OACK with blksize and the real tsize, then the file", async () => {
  const r = await fetch('odd.bin', { blksize: '1432', tsize: '0' });
  assert.deepEqual(r.optionAck, [{ name: 'blksize', value: '1432' }, { name: 'tsize', value: '5001' }]);
  assert.deepEqual(r.data, files.odd);
  assert.notEqual(r.serverPort, server.port, 'answers from a new TID');
});

test('no options: no OACK, 512-byte blocks; exact multiple of 512 ends with an empty block; empty file', async () => {
  const r = await fetch('exact.bin');
  assert.equal(r.optionAck, undefined);
  assert.deepEqual(r.data, files.exact);
  assert.equal(r.packets, 2, 'one full block and one empty block');
  assert.deepEqual((await fetch('empty')).data, Buffer.alloc(0));
});

test('windowsize and blksize are capped to the server limits, names case-insensitive, unknown and malformed options ignored', async () => {
  const r = await fetch('odd.bin', { BLKSIZE: '65464', WindowSize: '1000', multicast: '', timeout: 'x' }, 64);
  assert.deepEqual(r.optionAck, [{ name: 'blksize', value: '1468' }, { name: 'windowsize', value: '64' }]);
  assert.deepEqual(r.data, files.odd);
  const w = await fetch('odd.bin', { blksize: '1024', windowsize: '3' }, 3);
  assert.deepEqual(w.data, files.odd);
  assert.ok(metrics.value('diskless_tftp_options_ignored_total', { reason: 'unknown' }) >= 1);
  assert.ok(metrics.value('diskless_tftp_options_ignored_total', { reason: 'malformed' }) >= 1);
});

test('the same option twice is refused with ERROR 8', async () => {
  const r = await fetch('odd.bin', {});
  assert.ok(r.data);
  const dup = await rawFetch(encodeTftpPacket({ opcode: TftpOpcode.readRequest, filename: 'odd.bin', mode: 'octet', options: [{ name: 'blksize', value: '512' }, { name: 'BLKSIZE', value: '1024' }] }), { port: server.port });
  assert.equal(dup.error?.code, TftpErrorCode.optionNegotiationFailed);
});

test('symlinks inside the root, backslash separators and nested paths are served; case is exact', async () => {
  assert.deepEqual((await fetch('link-in')).data, files.odd);
  assert.deepEqual((await fetch('sub\\dir\\file')).data, files.odd);
  assert.deepEqual((await fetch('./sub//dir/file')).data, files.odd);
  assert.deepEqual((await fetch('CaSe')).data, Buffer.from('upper'));
  assert.equal((await fetch('case')).error?.code, TftpErrorCode.fileNotFound);
});

test('netascii: LF → CR LF, CR → CR NUL, tsize is the translated size', async () => {
  const r = await fetch('text.txt', { tsize: '0' }, 1, 'NetASCII');
  assert.deepEqual(r.data, toNetascii(files.text));
  assert.deepEqual(r.optionAck, [{ name: 'tsize', value: String(toNetascii(files.text).length) }]);
});

test('every escape attempt is refused with an ERROR packet and counted', async () => {
  const cases: Array<[Buffer, number, string]> = [
    [readRequest('../secret'), TftpErrorCode.accessViolation, 'dot_dot'],
    [readRequest('sub/../../secret'), TftpErrorCode.accessViolation, 'dot_dot'],
    [readRequest('..\\secret'), TftpErrorCode.accessViolation, 'dot_dot'],
    [readRequest('/etc/passwd'), TftpErrorCode.accessViolation, 'absolute_path'],
    [readRequest('\\etc\\passwd'), TftpErrorCode.accessViolation, 'absolute_path'],
    [readRequest('link-out'), TftpErrorCode.accessViolation, 'symlink_escape'],
    [readRequest('dir-link-out/secret'), TftpErrorCode.accessViolation, 'symlink_escape'],
    [readRequest('fifo'), TftpErrorCode.accessViolation, 'not_regular_file'],
    [readRequest('null'), TftpErrorCode.accessViolation, 'not_regular_file'],
    [readRequest('sub'), TftpErrorCode.accessViolation, 'not_regular_file'],
    [readRequest(''), TftpErrorCode.accessViolation, 'empty_name'],
    [readRequest('\xff\xfe.bin'), TftpErrorCode.accessViolation, 'not_utf8'],
    [readRequest('missing'), TftpErrorCode.fileNotFound, 'not_found'],
    [Buffer.from('\x00\x01odd.bin\x00../../secret\x00octet\x00', 'latin1'), TftpErrorCode.illegalOperation, 'bad_mode'],
    [Buffer.from('\x00\x01odd.bin\x00mail\x00', 'latin1'), TftpErrorCode.illegalOperation, 'bad_mode'],
    [Buffer.from('\x00\x01odd.bin', 'latin1'), TftpErrorCode.illegalOperation, 'malformed'],
    [encodeTftpPacket({ opcode: TftpOpcode.writeRequest, filename: 'new', mode: 'octet', options: [] }), TftpErrorCode.accessViolation, 'write_request'],
  ];
  for (const [request, code, reason] of cases) {
    const before = metrics.value('diskless_tftp_refused_total', { reason });
    const r = await rawFetch(request, { port: server.port, timeoutMs: 2000 });
    assert.equal(r.error?.code, code, `${JSON.stringify(request.toString('latin1'))}: ${JSON.stringify(r)}`);
    assert.equal(r.data, undefined);
    assert.equal(metrics.value('diskless_tftp_refused_total', { reason }), before + 1, reason);
  }
  assert.equal(server.activeTransfers, 0);
});

test('garbage and stray packets on port 69 are dropped and counted, the server keeps serving', async () => {
  const s = createSocket('udp4');
  for (const b of [Buffer.alloc(0), Buffer.from([0]), Buffer.from([0, 9, 1]), encodeAck(1), encodeError(0, 'x')]) s.send(b, server.port, '127.0.0.1');
  await new Promise((r) => setTimeout(r, 100));
  s.close();
  assert.equal(metrics.value('diskless_tftp_dropped_total', { reason: 'malformed' }) >= 3, true);
  assert.equal(metrics.value('diskless_tftp_dropped_total', { reason: 'not_a_request' }) >= 2, true);
  assert.deepEqual((await fetch('odd.bin')).data, files.odd);
});

test('a client that stops ACKing gets retransmissions with backoff, then an ERROR, and the transfer is gone', async () => {
  const { server: s, metrics: m } = await startServer({ timeoutMs: 100, retries: 2 });
  try {
    const started = Date.now();
    const r = await rawFetch(readRequest('odd.bin'), { port: s.port, stopAckingAfter: 2, timeoutMs: 3000 });
    const took = Date.now() - started;
    assert.equal(r.error?.code, TftpErrorCode.notDefined);
    assert.equal(r.packets, 2 + 3 + 1, 'blocks 1-2, block 3 three times, the ERROR');
    assert.ok(took >= 100 + 200 + 400 - 20 && took < 2500, `took ${took} ms`);
    assert.equal(m.value('diskless_tftp_transfers_total', { result: 'timeout' }), 1);
    assert.equal(m.value('diskless_tftp_blocks_retransmitted_total'), 2);
    assert.equal(s.activeTransfers, 0);
  } finally {
    await s.stop();
  }
});

test('the timeout option sets the retransmission timer (RFC 2349)', async () => {
  const { server: s } = await startServer({ timeoutMs: 10_000, retries: 1 });
  const sock = createSocket('udp4');
  try {
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    const arrivals: number[] = [];
    const started = Date.now();
    await new Promise<void>((resolve) => {
      sock.on('message', (msg, rinfo) => {
        const p = decodeTftpPacket(msg);
        if (p.opcode === TftpOpcode.optionAck) sock.send(encodeAck(0), rinfo.port, rinfo.address);
        if (p.opcode === TftpOpcode.data) arrivals.push(Date.now() - started);
        if (arrivals.length === 2) resolve();
      });
      sock.send(readRequest('odd.bin', { timeout: '1' }), s.port, '127.0.0.1');
    });
    const gap = arrivals[1]! - arrivals[0]!;
    assert.ok(gap >= 900 && gap < 3000, `resent after ${gap} ms`);
  } finally {
    sock.close();
    await s.stop();
  }
});

test('a client ERROR ends the transfer', async () => {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const before = metrics.value('diskless_tftp_transfers_total', { result: 'client_error' });
  await new Promise<void>((resolve) => {
    sock.once('message', (_msg, rinfo) => {
      sock.send(encodeError(0, 'cancelled'), rinfo.port, rinfo.address, () => resolve());
    });
    sock.send(readRequest('odd.bin'), server.port, '127.0.0.1');
  });
  await new Promise((r) => setTimeout(r, 100));
  sock.close();
  assert.equal(metrics.value('diskless_tftp_transfers_total', { result: 'client_error' }), before + 1);
  assert.equal(server.activeTransfers, 0);
});

test('many concurrent transfers, each from its own port', async () => {
  const results = await Promise.all(Array.from({ length: 24 }, (_, i) => fetch(i % 2 ? 'odd.bin' : 'sub/dir/file', { blksize: String(512 + i * 37), windowsize: String(1 + (i % 5)) }, 1 + (i % 5))));
  for (const r of results) assert.deepEqual(r.data, files.odd);
  assert.equal(new Set(results.map((r) => r.serverPort)).size, 24);
});

test('stop() ends transfers in progress and frees the port', async () => {
  const { server: s } = await startServer({ timeoutMs: 5000 });
  const pending = rawFetch(readRequest('odd.bin'), { port: s.port, stopAckingAfter: 1, timeoutMs: 3000 });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(s.activeTransfers, 1);
  await s.stop();
  assert.equal(s.activeTransfers, 0);
  assert.equal((await pending).error?.code, TftpErrorCode.notDefined);
  await s.stop();
});

test('bad options and a missing root are clear errors', async () => {
  assert.throws(() => new TftpServer({ root, maxBlockSize: 100, log: silentLogger(), metrics: new Metrics() }), (e: unknown) => isDisklessError(e, 'CONFIG_INVALID'));
  assert.throws(() => new TftpServer({ root, maxWindowSize: 0, log: silentLogger(), metrics: new Metrics() }), (e: unknown) => isDisklessError(e, 'CONFIG_INVALID'));
  const s = new TftpServer({ root: join(dir, 'nope'), port: 0, log: silentLogger(), metrics: new Metrics() });
  await assert.rejects(s.start(), (e: unknown) => isDisklessError(e, 'TFTP_FILE_NOT_FOUND'));
});
