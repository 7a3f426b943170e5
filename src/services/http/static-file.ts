import { constants } from 'node:fs';
import { open, realpath, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { evaluateRange, ifNoneMatchHits, ifRangeAllows, notModifiedSince } from './byte-range.js';

/** Why a static request was refused; also the `reason` label of diskless_http_dropped_total. */
export type StaticRefusal = 'bad_path' | 'traversal' | 'not_found';

/** How one static request ended: the status sent and the body bytes written. */
export interface StaticOutcome {
  readonly status: number;
  readonly bytes: number;
  readonly refusal?: StaticRefusal;
}

/** Content types by extension for what boot clients fetch; everything else is application/octet-stream. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.ipxe': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.cfg': 'text/plain; charset=utf-8',
  '.json': 'application/json',
  '.iso': 'application/x-iso9660-image',
  '.gz': 'application/gzip',
};

/** Read-stream chunk size: large enough to keep a gigabit link busy, small enough to stay out of memory pressure. */
const STREAM_CHUNK = 256 * 1024;

/**
 * Serves one file below `root` for GET/HEAD `urlPath` (the still percent-encoded part of the
 * URL after the route prefix). Confinement: every segment is decoded separately, so `%2F`
 * cannot forge a separator; `..` segments and NUL bytes are refused; the path is resolved with
 * realpath and must stay under realpath(root), so symlinks pointing out are refused too
 * (403); the resolved path is opened with O_NOFOLLOW and checked with fstat on the open
 * handle, so what is streamed is what was checked. Only regular files are served (no listing).
 * Conditional requests (If-None-Match, If-Modified-Since → 304) and single byte ranges
 * (see byte-range.ts) are honoured. The body is streamed, never buffered whole.
 */
export async function serveStaticFile(req: IncomingMessage, res: ServerResponse, root: string, urlPath: string): Promise<StaticOutcome> {
  const segments: string[] = [];
  for (const raw of urlPath.split('/')) {
    if (raw === '' || raw === '.') continue;
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return refuse(res, 400, 'bad_path', 'bad percent-encoding in path');
    }
    if (seg.includes('\0')) return refuse(res, 400, 'bad_path', 'NUL byte in path');
    if (seg === '..' || seg.includes('/')) return refuse(res, 403, 'traversal', 'path leaves the served directory');
    segments.push(seg);
  }
  let rootReal: string;
  let real: string;
  try {
    rootReal = await realpath(root);
    real = await realpath(join(rootReal, ...segments));
  } catch {
    return refuse(res, 404, 'not_found', 'no such file');
  }
  if (real !== rootReal && !real.startsWith(rootReal + sep)) return refuse(res, 403, 'traversal', 'path leaves the served directory');

  let handle: FileHandle;
  try {
    handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return refuse(res, 404, 'not_found', 'no such file');
  }
  let handedToStream = false;
  try {
    const st = await handle.stat();
    if (!st.isFile()) return refuse(res, 404, 'not_found', 'no such file');
    const size = st.size;
    const etag = `"${size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    const lastModified = st.mtime.toUTCString();
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('ETag', etag);
    res.setHeader('Last-Modified', lastModified);
    res.setHeader('Content-Type', CONTENT_TYPES[extname(real).toLowerCase()] ?? 'application/octet-stream');

    // RFC 9110 §13.2.2: If-None-Match first; If-Modified-Since only when it is absent.
    const inm = req.headers['if-none-match'];
    const ims = req.headers['if-modified-since'];
    if (inm !== undefined ? ifNoneMatchHits(inm, etag) : ims !== undefined && notModifiedSince(ims, st.mtimeMs)) {
      res.removeHeader('Content-Type');
      res.writeHead(304).end();
      return { status: 304, bytes: 0 };
    }

    const ifRange = req.headers['if-range'];
    const range = ifRangeAllows(typeof ifRange === 'string' ? ifRange : undefined, etag, lastModified) ? evaluateRange(req.headers.range, size) : ({ kind: 'full' } as const);
    if (range.kind === 'unsatisfiable') {
      res.setHeader('Content-Range', `bytes */${size}`);
      res.setHeader('Content-Length', 0);
      res.writeHead(416).end();
      return { status: 416, bytes: 0 };
    }
    const start = range.kind === 'partial' ? range.start : 0;
    const end = range.kind === 'partial' ? range.end : size - 1;
    const length = end - start + 1;
    const status = range.kind === 'partial' ? 206 : 200;
    if (range.kind === 'partial') res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
    res.setHeader('Content-Length', length);
    res.writeHead(status);
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return { status, bytes: 0 };
    }
    const stream = handle.createReadStream({ start, end, highWaterMark: STREAM_CHUNK, autoClose: true });
    handedToStream = true;
    let bytes = 0;
    stream.on('data', (chunk: Buffer | string) => {
      bytes += chunk.length;
    });
    try {
      await pipeline(stream, res);
    } catch {
      // Client went away mid-transfer (or the file shrank): the socket is already destroyed.
    }
    return { status, bytes };
  } finally {
    if (!handedToStream) await handle.close();
  }
}

function refuse(res: ServerResponse, status: number, refusal: StaticRefusal, why: string): StaticOutcome {
  const body = `${why}\n`;
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
  return { status, bytes: 0, refusal };
}
