/**
 * Pure evaluation of the Range and If-Range request headers against one file (RFC 9110 §14
 * and §13.1.5). No I/O; the static file handler turns the result into 200, 206 or 416.
 *
 * What we serve: one byte range per request — `first-last`, `first-` and the suffix form
 * `-length` (§14.1.2). A request for several ranges gets the whole file with 200, which §14.2
 * allows ("a server MAY ignore the Range header field"): multipart/byteranges buys nothing for
 * boot clients (iPXE and curl ask for one range) and would cost a second code path.
 */
export type RangeDecision =
  /** Send the whole representation with 200: no Range, an unknown unit, an invalid or multi-range set, or a failed If-Range. */
  | { readonly kind: 'full' }
  /** Send bytes `start..end` (inclusive) with 206 and `Content-Range: bytes start-end/size`. */
  | { readonly kind: 'partial'; readonly start: number; readonly end: number }
  /** Send 416 with an unsatisfied-range Content-Range ("bytes *" + "/size"): no requested byte exists (§15.5.17). */
  | { readonly kind: 'unsatisfiable' };

const FULL: RangeDecision = { kind: 'full' };
const UNSATISFIABLE: RangeDecision = { kind: 'unsatisfiable' };

/** int-range = first-pos "-" [ last-pos ]; suffix-range = "-" suffix-length (§14.1.2). */
const INT_RANGE = /^(\d+)-(\d*)$/;
const SUFFIX_RANGE = /^-(\d+)$/;

/**
 * Decides how to answer `Range: <header>` for a file of `size` bytes. Numbers too large for a
 * double still compare correctly against any real file size, so no overflow path exists.
 */
export function evaluateRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return FULL;
  const eq = header.indexOf('=');
  if (eq < 0) return FULL;
  // The range unit is case-insensitive (§14.1); anything but bytes is ignored.
  if (header.slice(0, eq).trim().toLowerCase() !== 'bytes') return FULL;
  // 1#range-spec: a list whose empty elements are ignored (§5.6.1).
  const specs = header
    .slice(eq + 1)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (specs.length !== 1) return FULL;
  const spec = specs[0]!;

  const suffix = SUFFIX_RANGE.exec(spec);
  if (suffix) {
    const length = Number(suffix[1]);
    // A zero-length suffix, or any range of an empty file, selects no byte (§14.1.1).
    if (length === 0 || size === 0) return UNSATISFIABLE;
    return { kind: 'partial', start: Math.max(0, size - length), end: size - 1 };
  }
  const int = INT_RANGE.exec(spec);
  if (!int) return FULL;
  const first = Number(int[1]);
  const last = int[2] === '' ? undefined : Number(int[2]);
  // last-pos below first-pos makes the range-spec invalid, so the header is ignored (§14.1.1).
  if (last !== undefined && last < first) return FULL;
  if (first >= size) return UNSATISFIABLE;
  return { kind: 'partial', start: first, end: Math.min(last ?? size - 1, size - 1) };
}

/**
 * If-Range (§13.1.5): true when the Range header may be honoured. An entity-tag must match
 * `etag` by strong comparison (a weak tag never does); a date must equal `lastModified`
 * exactly (as an HTTP-date, second resolution). Absent: true.
 */
export function ifRangeAllows(ifRange: string | undefined, etag: string, lastModified: string): boolean {
  if (ifRange === undefined) return true;
  const value = ifRange.trim();
  if (value.startsWith('W/')) return false;
  if (value.startsWith('"')) return value === etag && !etag.startsWith('W/');
  const date = Date.parse(value);
  return !Number.isNaN(date) && date === Date.parse(lastModified);
}

/**
 * If-None-Match (§13.1.2) uses weak comparison: `*` or any listed tag equal to `etag` once
 * `W/` prefixes are dropped. True means "not modified" (304 for GET/HEAD).
 */
export function ifNoneMatchHits(ifNoneMatch: string, etag: string): boolean {
  const opaque = (t: string) => (t.startsWith('W/') ? t.slice(2) : t);
  return ifNoneMatch
    .split(',')
    .map((t) => t.trim())
    .some((t) => t === '*' || (t !== '' && opaque(t) === opaque(etag)));
}

/** If-Modified-Since (§13.1.3): true when the file is not newer than the given HTTP-date (an unparseable date is ignored). */
export function notModifiedSince(ifModifiedSince: string, mtimeMs: number): boolean {
  const since = Date.parse(ifModifiedSince);
  if (Number.isNaN(since)) return false;
  // HTTP-dates have one-second resolution: compare whole seconds.
  return Math.floor(mtimeMs / 1000) * 1000 <= since;
}
