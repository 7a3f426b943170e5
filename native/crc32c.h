/* The hardware CRC32C of crc32c.c, for other native files (verified_read.c). Usable only once
 * crc32c_init has run and crc32c_ready() returns 1 (an x86-64 CPU with SSE4.2). */
#ifndef DISKLESS_CRC32C_H
#define DISKLESS_CRC32C_H
#include <stddef.h>
#include <stdint.h>

int crc32c_ready(void);
/* The running (pre-inverted) register after feeding p[0, n) to `crc`. */
uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t n);
/* The finished CRC32C of each of the n consecutive `block`-byte blocks at p, into out[0, n). */
void crc32c_block_sums(const uint8_t *p, size_t block, size_t n, uint32_t *out);
/* CRC32C by VPCLMULQDQ folding (crc32c_fold.c): crc32c_fold_init once, then usable for
 * n >= 256 when crc32c_fold_ready() returns 1. Same register semantics as crc32c_hw. */
void crc32c_fold_init(void);
int crc32c_fold_ready(void);
uint32_t crc32c_fold(uint32_t crc, const uint8_t *p, size_t n);
#endif
