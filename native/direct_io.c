/*
 * What direct I/O (O_DIRECT) needs that Node's fs does not give: the alignment the kernel
 * asks of a descriptor, and memory aligned to it.
 *
 * directIoAlignment(fd) -> { memory, offset } | null
 *   statx(fd, STATX_DIOALIGN): the alignment of buffer addresses (memory) and of file offsets
 *   and lengths (offset) that O_DIRECT reads and writes of this file need, in bytes. null when
 *   the kernel or the file system does not report it (older kernels, file systems without
 *   direct I/O: both values 0).
 * alignedBuffer(length, alignment) -> Buffer
 *   A zero-filled Buffer of `length` bytes whose first byte sits at a multiple of `alignment`
 *   (a power of two, 8..65536), freed when the Buffer is collected.
 *
 * Bad arguments throw a TypeError (code ERR_INVALID_ARG_TYPE); a failed statx throws an Error
 * whose `code` is the errno name, with `errno` and `syscall`; no memory throws ENOMEM.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/stat.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Largest buffer handed out (1 GiB): far above any read a target issues. */
#define MAX_ALIGNED_LENGTH (1024.0 * 1024 * 1024)

/* block_alloc.c: an Error whose code is the errno name, with errno and syscall. */
napi_value errno_error(napi_env env, const char *syscall, int err);

static int get_integer(napi_env env, napi_value v, double min, double max, double *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return -1;
  napi_get_value_double(env, v, out);
  if (!(*out >= min && *out <= max) || *out != (double)(int64_t)*out) return -1;
  return 0;
}

static napi_value direct_io_alignment(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  double fd;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || get_integer(env, argv[0], 0, 2147483647.0, &fd) != 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "directIoAlignment(fd): fd must be an integer >= 0");
    return NULL;
  }
  struct statx st;
  memset(&st, 0, sizeof st);
  if (syscall(SYS_statx, (int)fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &st) != 0) {
    napi_throw(env, errno_error(env, "statx", errno));
    return NULL;
  }
  napi_value out;
  if (!(st.stx_mask & STATX_DIOALIGN) || st.stx_dio_mem_align == 0 || st.stx_dio_offset_align == 0) {
    napi_get_null(env, &out);
    return out;
  }
  napi_value v;
  napi_create_object(env, &out);
  napi_create_uint32(env, st.stx_dio_mem_align, &v);
  napi_set_named_property(env, out, "memory", v);
  napi_create_uint32(env, st.stx_dio_offset_align, &v);
  napi_set_named_property(env, out, "offset", v);
  return out;
}

static void free_aligned(napi_env env, void *data, void *hint) {
  free(data);
}

static napi_value aligned_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  double length, alignment;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || get_integer(env, argv[0], 1, MAX_ALIGNED_LENGTH, &length) != 0 || get_integer(env, argv[1], 8, 65536, &alignment) != 0 ||
      ((uint64_t)alignment & ((uint64_t)alignment - 1)) != 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "alignedBuffer(length, alignment): length an integer 1..2^30, alignment a power of two 8..65536");
    return NULL;
  }
  void *mem = NULL;
  int err = posix_memalign(&mem, (size_t)alignment, (size_t)length);
  if (err != 0) {
    napi_throw(env, errno_error(env, "posix_memalign", err));
    return NULL;
  }
  memset(mem, 0, (size_t)length);
  napi_value out;
  if (napi_create_external_buffer(env, (size_t)length, mem, free_aligned, NULL, &out) != napi_ok) {
    free(mem);
    napi_throw_error(env, "ENOMEM", "alignedBuffer: cannot wrap the memory in a Buffer");
    return NULL;
  }
  return out;
}

napi_value direct_io_init(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
    { "directIoAlignment", NULL, direct_io_alignment, NULL, NULL, NULL, napi_default_jsproperty, NULL },
    { "alignedBuffer", NULL, aligned_buffer, NULL, NULL, NULL, napi_default_jsproperty, NULL },
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
  return exports;
}
