/*
 * The embedded store's cached read with its checksums, in one call
 * (src/store/embedded/verified-read.ts compares them).
 *
 * readBlocksNoWait(fd, position, target, start, end, scratch): fills target[start, end) with
 * the file's bytes at `position` only if every 4 KiB block covering them is in the page cache,
 * and writes the CRC32C of each covering block (first to last, native-endian u32) into
 * scratch from byte 8192 on. One preadv2(RWF_NOWAIT) reads the covering blocks: the range
 * straight into target, the edge blocks' bytes outside it into scratch[0, 8192). Returns the number of covering blocks, -1 (not all cached, end of file or a read
 * error: the caller reads the usual way, which reports errors) or -2 (the file system refuses
 * RWF_NOWAIT: stop trying on this file).
 *
 * Why one call: a cached 4 KiB read is about a microsecond of kernel work, and the JS version
 * (pread, then crc32cBlocks over the covering blocks, then a copy out of them for a read not
 * aligned to 4 KiB) spent as much again in call overhead, typed-array views and the copy.
 * The expected checksums stay in JS: passing each extent's Uint32Array to native code cost
 * more (IsTypedArray, Length, materialising small on-heap arrays) than comparing in JS.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <stdint.h>
#include <sys/uio.h>
#include "block_io.h"
#include "crc32c.h"

#if defined(__x86_64__)

#define VBLOCK 4096

static napi_value read_blocks_no_wait(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1;
  int64_t position = 0, start = 0, end = 0;
  void *data = NULL, *scratch = NULL;
  size_t length = 0, scratchLen = 0;
  if (argc < 6 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 || napi_get_value_int64(env, argv[1], &position) != napi_ok || position < 0 ||
      napi_get_buffer_info(env, argv[2], &data, &length) != napi_ok || napi_get_value_int64(env, argv[3], &start) != napi_ok ||
      napi_get_value_int64(env, argv[4], &end) != napi_ok || start < 0 || end < start || (uint64_t)end > length ||
      napi_get_buffer_info(env, argv[5], &scratch, &scratchLen) != napi_ok || scratchLen < 2 * VBLOCK || ((uintptr_t)scratch & 3) != 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "readBlocksNoWait(fd, position, target, start, end, scratch): fd >= 0, position >= 0, 0 <= start <= end <= target.length, scratch a 4-byte-aligned Buffer of at least 8192 bytes");
    return NULL;
  }
  size_t len = (size_t)(end - start);
  size_t headLen = (size_t)(position % VBLOCK);
  size_t coverEnd = ((size_t)position + len + VBLOCK - 1) / VBLOCK * VBLOCK;
  size_t tailLen = coverEnd - (size_t)position - len;
  size_t nBlocks = (headLen + len + tailLen) / VBLOCK;
  if (len == 0 || 2 * VBLOCK + 4 * nBlocks > scratchLen) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "readBlocksNoWait: the range must be non-empty and scratch must hold 8192 bytes plus 4 per covering 4 KiB block");
    return NULL;
  }
  /* The range goes straight into target; the bytes of the edge blocks outside it go to
     scratch (those before it at 0, those after it at VBLOCK). An edge block is checksummed in
     its pieces (scratch, then target, then scratch for a range inside one block): reading the
     edge blocks whole into scratch and copying the range's part out cost a 4 KiB memcpy per
     read not aligned to 4 KiB — 7 in 8 of iscsi-perf's random 512-byte-aligned reads. */
  uint8_t *dst = (uint8_t *)data + start;
  uint8_t *before = (uint8_t *)scratch, *after = (uint8_t *)scratch + VBLOCK;
  uint32_t *crcs = (uint32_t *)((uint8_t *)scratch + 2 * VBLOCK);
  struct iovec iov[3];
  int n = 0;
  if (headLen) iov[n++] = (struct iovec){ before, headLen };
  iov[n++] = (struct iovec){ dst, len };
  if (tailLen) iov[n++] = (struct iovec){ after, tailLen };
  ssize_t got = preadv_no_wait(fd, iov, n, (off_t)(position - (int64_t)headLen));
  int32_t result;
  if (got == NO_WAIT_UNSUPPORTED) result = -2;
  else if (got < 0 || (size_t)got != nBlocks * VBLOCK) result = -1; /* not cached, short, or an error the ordinary read reports */
  else {
    if (nBlocks == 1) {
      uint32_t c = crc32c_hw(0xffffffffu, before, headLen);
      c = crc32c_hw(c, dst, len);
      crcs[0] = crc32c_hw(c, after, tailLen) ^ 0xffffffffu;
    } else {
      size_t firstPart = headLen ? VBLOCK - headLen : 0; /* range bytes in a partial first block */
      size_t lastPart = tailLen ? VBLOCK - tailLen : 0;  /* range bytes in a partial last block */
      if (headLen) crcs[0] = crc32c_hw(crc32c_hw(0xffffffffu, before, headLen), dst, firstPart) ^ 0xffffffffu;
      size_t middle = len - firstPart - lastPart;
      if (middle) crc32c_block_sums(dst + firstPart, VBLOCK, middle / VBLOCK, crcs + (headLen ? 1 : 0));
      if (tailLen) crcs[nBlocks - 1] = crc32c_hw(crc32c_hw(0xffffffffu, dst + len - lastPart, lastPart), after, tailLen) ^ 0xffffffffu;
    }
    result = (int32_t)nBlocks;
  }
  napi_value out;
  napi_create_int32(env, result, &out);
  return out;
}

napi_value verified_read_init(napi_env env, napi_value exports) {
  if (!crc32c_ready()) return exports; /* no hardware CRC32C: src/store/embedded/verified-read.ts composes it in JS */
  napi_value fn;
  napi_create_function(env, "readBlocksNoWait", NAPI_AUTO_LENGTH, read_blocks_no_wait, NULL, &fn);
  napi_set_named_property(env, exports, "readBlocksNoWait", fn);
  return exports;
}

#else

napi_value verified_read_init(napi_env env, napi_value exports) {
  return exports; /* no hardware CRC32C on this architecture */
}

#endif
