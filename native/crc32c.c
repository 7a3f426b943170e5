/*
 * CRC32C (Castagnoli), the iSCSI header and data digest, with the x86 SSE4.2 crc32
 * instruction. Registered only when the CPU has it (checked at load with cpuid); elsewhere
 * the addon leaves `crc32cUpdate` out and src/wire/iscsi/crc32c.ts keeps its table version.
 *
 * crc32cUpdate(crc, buffer[, start, end]): the running (pre-inverted) register after feeding
 * buffer[start, end), as an unsigned 32-bit number. Callers start from 0xffffffff and invert
 * the result, exactly like the JS version, so the two are interchangeable per chunk.
 *
 * Long buffers are split into three interleaved streams (the instruction's latency is 3
 * cycles, its throughput 1 per cycle) and combined by linearity:
 * each stream's CRC is advanced over the following streams' lengths by the "zero-extension"
 * operator computed with the same instruction.
 */
#include <node_api.h>
#include <stdint.h>
#include <string.h>
#include "crc32c.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>

static int have_sse42(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  return (c & bit_SSE4_2) != 0;
}

/* x^(8n) mod P applied to a CRC register: multiplies in GF(2) by the shift of n zero bytes.
 * The map is linear, so it is applied a byte at a time from four 256-entry tables (built once
 * per length from the images of the 32 single bits): four loads, no data-dependent branches. */
typedef struct {
  uint32_t t[4][256];
} shift_op;

/* The register after n zero bytes, starting from `crc`. */
__attribute__((target("sse4.2"))) static uint32_t zeros(uint32_t crc, size_t n) {
  while (n >= 8) {
    crc = (uint32_t)_mm_crc32_u64(crc, 0);
    n -= 8;
  }
  while (n--) crc = _mm_crc32_u8(crc, 0);
  return crc;
}

static void build_shift(shift_op *op, size_t n) {
  uint32_t col[32];
  for (int i = 0; i < 32; i++) col[i] = zeros(1u << i, n);
  for (int k = 0; k < 4; k++)
    for (int b = 0; b < 256; b++) {
      uint32_t v = 0;
      for (int j = 0; j < 8; j++)
        if (b & (1 << j)) v ^= col[8 * k + j];
      op->t[k][b] = v;
    }
}

static inline uint32_t apply_shift(const shift_op *op, uint32_t crc) {
  return op->t[0][crc & 0xff] ^ op->t[1][(crc >> 8) & 0xff] ^ op->t[2][(crc >> 16) & 0xff] ^ op->t[3][crc >> 24];
}

#define BLOCK 4096 /* bytes per stream per round in the interleaved loop */
static shift_op shift_block;  /* advance over BLOCK zero bytes */
static shift_op shift_block2; /* advance over 2*BLOCK zero bytes */
/* Shorter rounds for what is left under 3*BLOCK: a lone 4 KiB block (the embedded store
 * verifies one per 4 KiB read, two per unaligned one) is one MID round plus 16 bytes, about
 * 2.5 times faster than one stream. */
#define MID 1360
static shift_op shift_mid;
static shift_op shift_mid2;

/* Advances three CRC registers over `len` bytes (a multiple of 8) of three streams at once: the
 * crc32 instruction's latency is hidden by the two others in flight. */
__attribute__((target("sse4.2"), always_inline)) static inline void crc_three_streams(const uint8_t *pa, const uint8_t *pb, const uint8_t *pc, size_t len, uint64_t *a, uint64_t *b, uint64_t *c) {
  uint64_t ra = *a, rb = *b, rc = *c;
  for (size_t i = 0; i < len; i += 8) {
    uint64_t x, y, z;
    memcpy(&x, pa + i, 8);
    memcpy(&y, pb + i, 8);
    memcpy(&z, pc + i, 8);
    ra = _mm_crc32_u64(ra, x);
    rb = _mm_crc32_u64(rb, y);
    rc = _mm_crc32_u64(rc, z);
  }
  *a = ra;
  *b = rb;
  *c = rc;
}

/* Rounds of three streams over consecutive runs of `len` bytes (a over [0,len), b over
 * [len,2len), c over [2len,3len)) while at least 3*len bytes are left; the registers combine
 * linearly: a shifted over 2*len bytes (`two`) and b over len (`one`), then xored with c. */
__attribute__((target("sse4.2"), always_inline)) static inline uint32_t three_stream_rounds(uint32_t crc, const uint8_t **pp, size_t *np, size_t len, const shift_op *one, const shift_op *two) {
  const uint8_t *p = *pp;
  size_t n = *np;
  while (n >= 3 * len) {
    uint64_t a = crc, b = 0, c = 0;
    crc_three_streams(p, p + len, p + 2 * len, len, &a, &b, &c);
    crc = apply_shift(two, (uint32_t)a) ^ apply_shift(one, (uint32_t)b) ^ (uint32_t)c;
    p += 3 * len;
    n -= 3 * len;
  }
  *pp = p;
  *np = n;
  return crc;
}

__attribute__((target("sse4.2"))) uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t n) {
  if (n >= 256 && crc32c_fold_ready()) return crc32c_fold(crc, p, n);
  while (n && ((uintptr_t)p & 7)) {
    crc = _mm_crc32_u8(crc, *p++);
    n--;
  }
  crc = three_stream_rounds(crc, &p, &n, BLOCK, &shift_block, &shift_block2);
  crc = three_stream_rounds(crc, &p, &n, MID, &shift_mid, &shift_mid2);
  uint64_t r = crc;
  while (n >= 8) {
    uint64_t x;
    memcpy(&x, p, 8);
    r = _mm_crc32_u64(r, x);
    p += 8;
    n -= 8;
  }
  crc = (uint32_t)r;
  while (n--) crc = _mm_crc32_u8(crc, *p++);
  return crc;
}

static napi_value crc32c_update(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t crc;
  void *data;
  size_t len;
  bool is_buffer = false;
  if (argc < 2 || napi_get_value_uint32(env, argv[0], &crc) != napi_ok || napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "crc32cUpdate(crc, buffer[, start, end]): crc must be a number and buffer a Buffer");
    return NULL;
  }
  napi_get_buffer_info(env, argv[1], &data, &len);
  uint32_t start = 0, end = (uint32_t)len;
  if (argc >= 3) napi_get_value_uint32(env, argv[2], &start);
  if (argc >= 4) napi_get_value_uint32(env, argv[3], &end);
  if (end > len || start > end) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "crc32cUpdate: start/end outside the buffer");
    return NULL;
  }
  napi_value out;
  napi_create_uint32(env, crc32c_hw(crc, (const uint8_t *)data + start, end - start), &out);
  return out;
}

/* Finished CRCs of blocks [0, n - n % 3) in groups of three; sets *done to the first block left. */
__attribute__((target("sse4.2"))) static void crc32c_three(const uint8_t *p, size_t block, size_t n, uint32_t *out, size_t *done) {
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint8_t *pa = p + i * block, *pb = pa + block, *pc = pb + block;
    uint64_t a = 0xffffffffu, b = 0xffffffffu, c = 0xffffffffu;
    crc_three_streams(pa, pb, pc, block, &a, &b, &c);
    out[i] = (uint32_t)a ^ 0xffffffffu;
    out[i + 1] = (uint32_t)b ^ 0xffffffffu;
    out[i + 2] = (uint32_t)c ^ 0xffffffffu;
  }
  *done = i;
}

/*
 * crc32cBlocks(buffer, blockSize, out[, outIndex]): the finished CRC32C (inverted in and out,
 * as Crc32c.of) of each consecutive blockSize-byte block of buffer, stored in the Uint32Array
 * out from outIndex on. One call per extent instead of one per block: the embedded store
 * checksums every 4 KiB block it writes and verifies every block it reads.
 */
static napi_value crc32c_blocks(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *data;
  size_t len;
  bool is_buffer = false, is_typed = false;
  uint32_t block = 0, out_index = 0;
  if (argc < 3 || napi_is_buffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer || napi_get_value_uint32(env, argv[1], &block) != napi_ok ||
      napi_is_typedarray(env, argv[2], &is_typed) != napi_ok || !is_typed) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "crc32cBlocks(buffer, blockSize, out[, outIndex]): buffer a Buffer, blockSize a number, out a Uint32Array");
    return NULL;
  }
  if (argc >= 4) napi_get_value_uint32(env, argv[3], &out_index);
  napi_typedarray_type type;
  size_t out_len;
  void *out_data;
  napi_get_buffer_info(env, argv[0], &data, &len);
  napi_get_typedarray_info(env, argv[2], &type, &out_len, &out_data, NULL, NULL);
  if (type != napi_uint32_array || block == 0 || len % block != 0 || out_index + len / block > out_len) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "crc32cBlocks: blockSize must divide the buffer and out must hold one entry per block");
    return NULL;
  }
  crc32c_block_sums((const uint8_t *)data, block, len / block, (uint32_t *)out_data + out_index);
  return argv[2];
}

void crc32c_block_sums(const uint8_t *p, size_t block, size_t n, uint32_t *out) {
  size_t i = 0;
  /* The blocks are independent: without folding, three at a time keep three crc32
     instructions in flight (latency 3, throughput 1), twice the speed of one after another. */
  if (block % 8 == 0 && !(block >= 256 && crc32c_fold_ready())) crc32c_three(p, block, n, out, &i);
  for (; i < n; i++) out[i] = crc32c_hw(0xffffffffu, p + i * block, block) ^ 0xffffffffu;
}

static int ready;

int crc32c_ready(void) {
  return ready;
}

napi_value crc32c_init(napi_env env, napi_value exports) {
  if (!have_sse42()) return exports;
  build_shift(&shift_block, BLOCK);
  build_shift(&shift_block2, 2 * BLOCK);
  build_shift(&shift_mid, MID);
  build_shift(&shift_mid2, 2 * MID);
  crc32c_fold_init();
  ready = 1;
  napi_value fn;
  napi_create_function(env, "crc32cUpdate", NAPI_AUTO_LENGTH, crc32c_update, NULL, &fn);
  napi_set_named_property(env, exports, "crc32cUpdate", fn);
  napi_create_function(env, "crc32cBlocks", NAPI_AUTO_LENGTH, crc32c_blocks, NULL, &fn);
  napi_set_named_property(env, exports, "crc32cBlocks", fn);
  return exports;
}

#else

napi_value crc32c_init(napi_env env, napi_value exports) {
  return exports; /* no hardware CRC32C on this architecture: the JS tables are used */
}

int crc32c_ready(void) {
  return 0;
}

#endif
