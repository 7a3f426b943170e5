/*
 * CRC32C by carry-less multiplication folding (AVX-512 VPCLMULQDQ), for buffers of 256 bytes
 * and more on CPUs that have it; crc32c.c uses it from crc32c_hw when crc32c_fold_ready().
 *
 * The message is a polynomial over GF(2); its CRC register depends only on it modulo P. A
 * 16-byte chunk A at distance D bits before the end of a later chunk can be replaced by
 * A * x^D mod P, which folds into that later chunk: with A's two 64-bit halves (the first
 * eight bytes hold the higher-degree coefficients, the bits being reflected),
 *   A * x^D  ==  lo(A) * (x^(D+32) mod P)  +  hi(A) * (x^(D-32) mod P)      (mod P, aligned)
 * and each product is one carry-less multiplication by a constant stored bit-reflected and
 * shifted left by one. Four 512-bit accumulators fold 256 bytes per round (four chunks of 16
 * bytes in each), then fold onto one another, then their four lanes onto the last, leaving 16
 * bytes whose CRC from register 0 — one crc32 instruction per 8 bytes — is the register after
 * the whole buffer. The initial register is XORed into the first four bytes.
 *
 * Measured here (AMD EPYC, Zen 4): ~4x the three-stream crc32 loop on 4 KiB and on 256 KiB.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "crc32c.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

/* 128-bit fold constants {x^(D+32) mod P, x^(D-32) mod P}, reflected and shifted, per distance. */
typedef struct {
  uint64_t lo, hi;
} fold_k;

static fold_k k2048, k512, k384, k256, k128;
static int fold_ready;

/* x^n mod P (P = 0x11EDC6F41, CRC32C, normal bit order), then reflected over 32 bits and shifted left by one. */
static uint64_t xpow(unsigned n) {
  uint64_t r = 1;
  for (unsigned i = 0; i < n; i++) {
    r <<= 1;
    if (r & (1ull << 32)) r ^= 0x11EDC6F41ull;
  }
  uint64_t out = 0;
  for (int i = 0; i < 32; i++)
    if (r & (1ull << i)) out |= 1ull << (31 - i);
  return out << 1;
}

static fold_k constants(unsigned distance) {
  fold_k k = { xpow(distance + 32), xpow(distance - 32) };
  return k;
}

static int cpu_has_vpclmul512(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_SSE4_2)) return 0;
  unsigned lo, hi;
  __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  /* XCR0: SSE, AVX, opmask, ZMM_Hi256 and Hi16_ZMM state enabled by the OS */
  if ((lo & 0xe6) != 0xe6) return 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  return (b & bit_AVX512F) && (c & bit_VPCLMULQDQ);
}

void crc32c_fold_init(void) {
  /* DISKLESS_CRC32C_NO_FOLD: the crc32-instruction path only (tests cover it on CPUs that fold) */
  if (!cpu_has_vpclmul512() || getenv("DISKLESS_CRC32C_NO_FOLD")) return;
  k2048 = constants(2048);
  k512 = constants(512);
  k384 = constants(384);
  k256 = constants(256);
  k128 = constants(128);
  fold_ready = 1;
}

int crc32c_fold_ready(void) {
  return fold_ready;
}

#define FOLD_TARGET __attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.2")))

/* x folded forward by the distance of k, XORed with y. */
FOLD_TARGET static inline __m512i fold512(__m512i x, __m512i k, __m512i y) {
  return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00), _mm512_clmulepi64_epi128(x, k, 0x11), y, 0x96);
}

FOLD_TARGET static inline __m128i fold128(__m128i x, __m128i k, __m128i y) {
  return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), y);
}

FOLD_TARGET uint32_t crc32c_fold(uint32_t crc, const uint8_t *p, size_t n) {
  /* n >= 256 */
  const __m512i kStripe = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)k2048.hi, (long long)k2048.lo));
  const __m512i kChunk = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)k512.hi, (long long)k512.lo));
  __m512i x0 = _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_castsi128_si512(_mm_cvtsi32_si128((int)crc)));
  __m512i x1 = _mm512_loadu_si512(p + 64);
  __m512i x2 = _mm512_loadu_si512(p + 128);
  __m512i x3 = _mm512_loadu_si512(p + 192);
  p += 256;
  n -= 256;
  while (n >= 256) {
    x0 = fold512(x0, kStripe, _mm512_loadu_si512(p));
    x1 = fold512(x1, kStripe, _mm512_loadu_si512(p + 64));
    x2 = fold512(x2, kStripe, _mm512_loadu_si512(p + 128));
    x3 = fold512(x3, kStripe, _mm512_loadu_si512(p + 192));
    p += 256;
    n -= 256;
  }
  x1 = fold512(x0, kChunk, x1);
  x2 = fold512(x1, kChunk, x2);
  x3 = fold512(x2, kChunk, x3);
  while (n >= 64) {
    x3 = fold512(x3, kChunk, _mm512_loadu_si512(p));
    p += 64;
    n -= 64;
  }
  /* lanes 0, 1, 2 (earliest first) folded by 384, 256 and 128 bits onto lane 3 */
  const __m512i kLanes = _mm512_set_epi64(0, 0, (long long)k128.hi, (long long)k128.lo, (long long)k256.hi, (long long)k256.lo, (long long)k384.hi, (long long)k384.lo);
  __m512i t = _mm512_xor_si512(_mm512_clmulepi64_epi128(x3, kLanes, 0x00), _mm512_clmulepi64_epi128(x3, kLanes, 0x11));
  __m128i v = _mm_xor_si128(_mm_xor_si128(_mm512_castsi512_si128(t), _mm512_extracti32x4_epi32(t, 1)), _mm_xor_si128(_mm512_extracti32x4_epi32(t, 2), _mm512_extracti32x4_epi32(x3, 3)));
  const __m128i k16 = _mm_set_epi64x((long long)k128.hi, (long long)k128.lo);
  while (n >= 16) {
    v = fold128(v, k16, _mm_loadu_si128((const __m128i *)p));
    p += 16;
    n -= 16;
  }
  uint64_t r = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(v));
  r = _mm_crc32_u64(r, (uint64_t)_mm_extract_epi64(v, 1));
  crc = (uint32_t)r;
  while (n--) crc = _mm_crc32_u8(crc, *p++);
  return crc;
}

#else

void crc32c_fold_init(void) {}
int crc32c_fold_ready(void) {
  return 0;
}
uint32_t crc32c_fold(uint32_t crc, const uint8_t *p, size_t n) {
  (void)p;
  (void)n;
  return crc;
}

#endif
