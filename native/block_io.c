/*
 * Positional reads that never wait for the disk, for block targets serving files from the
 * page cache.
 *
 * preadNoWait(fd, buffer, start, end, position): preadv2(RWF_NOWAIT) of buffer[start, end) at
 * file offset `position`, on the calling (JS) thread. Returns the byte count read (0 at end
 * of file; possibly short when only part of the range is cached), or -1 when no byte of it is
 * in the page cache (EAGAIN: the caller reads it through the thread pool instead), or -2 when
 * the kernel or file system does not support RWF_NOWAIT for this file (EOPNOTSUPP: the
 * caller should stop trying). Other failures throw an Error whose code is the errno name
 * (EBADF, EIO, EINVAL...).
 *
 * Why: a 4 KiB read through Node's fs goes to the libuv thread pool — a mutex, a condition
 * variable signal that wakes a worker thread (a context switch on a 2-core machine), then an
 * async handle to come back — which cost more than the copy itself. A cached page copies in
 * about a microsecond here; a miss costs one failed syscall and goes the usual way.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include "block_io.h"

static napi_value throw_errno(napi_env env, int err) {
  const char *name = err == EBADF ? "EBADF" : err == EIO ? "EIO" : err == EINVAL ? "EINVAL" : err == EFAULT ? "EFAULT" : err == EISDIR ? "EISDIR" : err == EOVERFLOW ? "EOVERFLOW" : err == EINTR ? "EINTR" : "EIO";
  napi_value code, msg, error;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_throw(env, error);
  return NULL;
}

ssize_t preadv_no_wait(int fd, const struct iovec *iov, int count, off_t position) {
  ssize_t n;
  do {
    n = preadv2(fd, iov, count, position, RWF_NOWAIT);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) return n;
  if (errno == EAGAIN) return NO_WAIT_NOT_CACHED;
  return errno == EOPNOTSUPP || errno == ENOSYS ? NO_WAIT_UNSUPPORTED : NO_WAIT_ERROR;
}

static napi_value pread_no_wait(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1;
  int64_t start = 0, end = 0, position = 0;
  void *data = NULL;
  size_t length = 0;
  if (argc < 5 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 || napi_get_buffer_info(env, argv[1], &data, &length) != napi_ok ||
      napi_get_value_int64(env, argv[2], &start) != napi_ok || napi_get_value_int64(env, argv[3], &end) != napi_ok ||
      napi_get_value_int64(env, argv[4], &position) != napi_ok || start < 0 || end < start || (uint64_t)end > length || position < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "preadNoWait(fd, buffer, start, end, position): fd >= 0, 0 <= start <= end <= buffer.length, position >= 0");
    return NULL;
  }
  struct iovec iov = { (char *)data + start, (size_t)(end - start) };
  ssize_t n = preadv_no_wait(fd, &iov, 1, (off_t)position);
  if (n == NO_WAIT_ERROR) return throw_errno(env, errno);
  napi_value out;
  napi_create_int64(env, (int64_t)n, &out);
  return out;
}

napi_value block_io_init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "preadNoWait", NAPI_AUTO_LENGTH, pread_no_wait, NULL, &fn);
  napi_set_named_property(env, exports, "preadNoWait", fn);
  return exports;
}
