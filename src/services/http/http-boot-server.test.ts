import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DisklessError, isDisklessError } from '../../errors/index.js';
import { silentLogger } from '../../observe/logger.js';
import { Metrics } from '../../observe/metrics.js';
import { HttpBootServer } from './http-boot-server.js';
import type { ScriptSource } from './script-source.js';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET', agent: Agent | false = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Records what the server asked and answers per MAC like the control layer would. */
class TableScripts implements ScriptSource {
  readonly asked: Array<[string, string]> = [];
  async scriptFor(mac: string, clientIp: string): Promise<string> {
    this.asked.push([mac, clientIp]);
    if (mac === '52:54:00:00:00:01') return '#!ipxe\nexit\n';
    if (mac === '52:54:00:00:00:0e') throw new TypeError('a bug in the control layer');
    throw new DisklessError('CONTROL_UNKNOWN_NODE', `no boot script for ${mac}`, { mac });
  }
}

async function setup(t: { after(fn: () => Promise<void> | void): void }) {
  const base = mkdtempSync(join(tmpdir(), 'dh-http-'));
  const root = join(base, 'root');
  mkdirSync(join(root, 'd'), { recursive: true });
  const data = randomBytes(1000);
  writeFileSync(join(root, 'a.bin'), data);
  writeFileSync(join(root, 'empty'), '');
  writeFileSync(join(root, 'd', 'x.txt'), 'hello\n');
  const big = randomBytes(8 * 1024 * 1024);
  writeFileSync(join(root, 'big.img'), big);
  writeFileSync(join(base, 'secret'), 'outside the root\n');
  symlinkSync(join(base, 'secret'), join(root, 'out'));
  symlinkSync(base, join(root, 'updir'));
  symlinkSync('a.bin', join(root, 'in'));
  utimesSync(join(root, 'a.bin'), new Date('2026-11-20T10:00:00Z'), new Date('2026-11-20T10:00:00Z'));
  const bootFiles = join(base, 'tftp');
  mkdirSync(bootFiles);
  writeFileSync(join(bootFiles, 'ipxe.efi'), 'MZ fake efi');
  const metrics = new Metrics();
  const scripts = new TableScripts();
  const server = new HttpBootServer({ address: '127.0.0.1', port: 0, root, bootFilesRoot: bootFiles, scripts, metrics, log: silentLogger() });
  await server.start();
  t.after(async () => {
    await server.stop();
    rmSync(base, { recursive: true, force: true });
  });
  return { server, port: server.boundAddress()!.port, data, big, metrics, scripts };
}

test('static files: whole file with validators, HEAD, keep-alive', async (t) => {
  const { port, data } = await setup(t);
  const r = await get(port, '/files/a.bin');
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, data);
  assert.equal(r.headers['content-length'], '1000');
  assert.equal(r.headers['accept-ranges'], 'bytes');
  assert.equal(r.headers['last-modified'], 'Fri, 20 Nov 2026 10:00:00 GMT');
  assert.match(r.headers.etag!, /^"3e8-[0-9a-f]+"$/);
  const h = await get(port, '/files/a.bin', {}, 'HEAD');
  assert.equal(h.status, 200);
  assert.equal(h.headers['content-length'], '1000');
  assert.equal(h.body.length, 0);
  assert.equal((await get(port, '/files/d/x.txt')).headers['content-type'], 'text/plain; charset=utf-8');
  assert.deepEqual((await get(port, '/files/in')).body, data, 'a symlink inside the root is fine');
  assert.equal((await get(port, '/files/empty')).headers['content-length'], '0');
  assert.equal((await get(port, '/bootfiles/ipxe.efi')).body.toString(), 'MZ fake efi');
});

test('Range: 206 with Content-Range, suffix, open-ended, 416 with bytes */size, several ranges → 200', async (t) => {
  const { port, data, big } = await setup(t);
  const r1 = await get(port, '/files/a.bin', { Range: 'bytes=0-9' });
  assert.equal(r1.status, 206);
  assert.equal(r1.headers['content-range'], 'bytes 0-9/1000');
  assert.equal(r1.headers['content-length'], '10');
  assert.deepEqual(r1.body, data.subarray(0, 10));
  const r2 = await get(port, '/files/a.bin', { Range: 'bytes=-100' });
  assert.equal(r2.headers['content-range'], 'bytes 900-999/1000');
  assert.deepEqual(r2.body, data.subarray(900));
  const r3 = await get(port, '/files/a.bin', { Range: 'bytes=995-' });
  assert.deepEqual(r3.body, data.subarray(995));
  const r4 = await get(port, '/files/a.bin', { Range: 'bytes=1000-' });
  assert.equal(r4.status, 416);
  assert.equal(r4.headers['content-range'], 'bytes */1000');
  assert.equal(r4.body.length, 0);
  assert.equal((await get(port, '/files/empty', { Range: 'bytes=0-' })).status, 416);
  const r5 = await get(port, '/files/a.bin', { Range: 'bytes=0-1,5-6' });
  assert.equal(r5.status, 200);
  assert.deepEqual(r5.body, data);
  assert.equal((await get(port, '/files/a.bin', { Range: 'bytes=9-3' })).status, 200);
  const mid = await get(port, '/files/big.img', { Range: `bytes=${3_000_000}-${7_000_000}` });
  assert.equal(mid.status, 206);
  assert.ok(mid.body.equals(big.subarray(3_000_000, 7_000_001)));
  const head = await get(port, '/files/a.bin', { Range: 'bytes=10-19' }, 'HEAD');
  assert.equal(head.status, 206);
  assert.equal(head.body.length, 0);
});

test('conditional requests: If-None-Match and If-Modified-Since give 304, a stale If-Range gives the whole file', async (t) => {
  const { port, data } = await setup(t);
  const { headers } = await get(port, '/files/a.bin');
  const inm = await get(port, '/files/a.bin', { 'If-None-Match': headers.etag! });
  assert.equal(inm.status, 304);
  assert.equal(inm.body.length, 0);
  assert.equal((await get(port, '/files/a.bin', { 'If-Modified-Since': 'Fri, 20 Nov 2026 10:00:00 GMT' })).status, 304);
  assert.equal((await get(port, '/files/a.bin', { 'If-Modified-Since': 'Fri, 20 Nov 2026 09:00:00 GMT' })).status, 200);
  // If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
  assert.equal((await get(port, '/files/a.bin', { 'If-None-Match': '"other"', 'If-Modified-Since': 'Fri, 20 Nov 2026 10:00:00 GMT' })).status, 200);
  const stale = await get(port, '/files/a.bin', { Range: 'bytes=0-9', 'If-Range': '"other"' });
  assert.equal(stale.status, 200);
  assert.deepEqual(stale.body, data);
  assert.equal((await get(port, '/files/a.bin', { Range: 'bytes=0-9', 'If-Range': headers.etag! })).status, 206);
});

test('traversal is refused: dot segments, encoded slashes and dots, symlinks out, NUL, directories', async (t) => {
  const { port, metrics } = await setup(t);
  for (const path of ['/files/../secret', '/files/%2e%2e/secret', '/files/..%2fsecret', '/files/d/../../secret', '/files/d/%2E%2E/%2E%2E/secret', '/files/out', '/files/updir/secret']) {
    const r = await get(port, path);
    assert.equal(r.status, 403, path);
    assert.ok(!r.body.toString().includes('outside the root'), path);
  }
  assert.equal((await get(port, '/files/a.bin%00.txt')).status, 400);
  assert.equal((await get(port, '/files/%zz')).status, 400);
  assert.equal((await get(port, '/files/d')).status, 404);
  assert.equal((await get(port, '/files/')).status, 404);
  assert.equal((await get(port, '/files/nope')).status, 404);
  assert.equal(metrics.value('diskless_http_dropped_total', { reason: 'traversal' }), 7);
  assert.equal(metrics.value('diskless_http_dropped_total', { reason: 'bad_path' }), 2);
});

test('/boot/<mac>.ipxe: any MAC notation, client IP passed on, 400 on a bad MAC, 404 for no script, 500 on a bug', async (t) => {
  const { port, scripts, metrics } = await setup(t);
  for (const mac of ['52:54:00:00:00:01', '52-54-00-00-00-01', '525400000001', '5254.0000.0001', '52%3A54%3A00%3A00%3A00%3A01']) {
    const r = await get(port, `/boot/${mac}.ipxe`);
    assert.equal(r.status, 200, mac);
    assert.equal(r.body.toString(), '#!ipxe\nexit\n');
    assert.equal(r.headers['cache-control'], 'no-store');
  }
  assert.deepEqual(scripts.asked[0], ['52:54:00:00:00:01', '127.0.0.1']);
  const bad = await get(port, '/boot/52-54-00-zz-00-01.ipxe');
  assert.equal(bad.status, 400);
  assert.match(bad.body.toString(), /^error HTTP_BAD_MAC: /);
  assert.equal((await get(port, '/boot/x')).status, 400);
  const unknown = await get(port, '/boot/52-54-00-00-00-02.ipxe');
  assert.equal(unknown.status, 404);
  assert.match(unknown.body.toString(), /^error CONTROL_UNKNOWN_NODE: /);
  assert.equal((await get(port, '/boot/52-54-00-00-00-0e.ipxe')).status, 500);
  assert.equal((await get(port, '/healthz')).body.toString(), 'ok\n');
  assert.equal(metrics.value('diskless_http_dropped_total', { reason: 'bad_mac' }), 2);
  assert.equal(metrics.value('diskless_http_requests_total', { route: 'script', status: '200' }), 5);
});

test('/metrics, /healthz, 405 with Allow, 404 for other paths', async (t) => {
  const { port } = await setup(t);
  await get(port, '/files/a.bin');
  // A file request is counted when the server sees its stream finish, which can be just after
  // the client has the last byte: ask again for a moment before calling it missing.
  const counted = /^diskless_http_requests_total\{route="files",status="200"\} 1$/m;
  let m = await get(port, '/metrics');
  for (let i = 0; i < 40 && !counted.test(m.body.toString()); i++) {
    await new Promise((r) => setTimeout(r, 25));
    m = await get(port, '/metrics');
  }
  assert.equal(m.status, 200);
  assert.match(m.headers['content-type']!, /^text\/plain; version=0\.0\.4/);
  assert.match(m.body.toString(), counted);
  const post = await get(port, '/files/a.bin', {}, 'POST');
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET, HEAD');
  assert.equal((await get(port, '/')).status, 404);
  assert.equal((await get(port, '/bootfilesx/ipxe.efi')).status, 404);
});

test('keep-alive: several requests on one connection', async (t) => {
  const { port } = await setup(t);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const sockets = new Set<unknown>();
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/files/a.bin', agent }, (res) => {
        sockets.add(res.socket);
        assert.equal(res.headers.connection, 'keep-alive');
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
  }
  assert.equal(sockets.size, 1);
});

test('a client that goes away mid-transfer, or sends garbage, does not hurt the server', async (t) => {
  const { port, metrics } = await setup(t);
  await new Promise<void>((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/files/big.img', agent: false }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', () => undefined);
    req.end();
  });
  const garbage = await new Promise<string>((resolve) => {
    const s = connect(port, '127.0.0.1', () => s.write('NOT HTTP AT ALL\r\n\r\n'));
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('close', () => resolve(out));
  });
  assert.match(garbage, /^HTTP\/1\.1 400/);
  assert.equal(metrics.value('diskless_http_dropped_total', { reason: 'bad_request' }), 1);
  assert.equal((await get(port, '/healthz')).status, 200);
});

test('start fails with HTTP_LISTEN_FAILED on a port in use; stop is idempotent and safe before start', async (t) => {
  const { port } = await setup(t);
  const second = new HttpBootServer({ address: '127.0.0.1', port, root: '/nonexistent', scripts: new TableScripts(), metrics: new Metrics(), log: silentLogger() });
  await assert.rejects(second.start(), (e: unknown) => isDisklessError(e, 'HTTP_LISTEN_FAILED'));
  await second.stop();
  await second.stop();
});
