/*
 * Block allocation of regular files, for thin-provisioned volumes: free a byte range (punch a
 * hole) and find where allocated data and holes begin. Node's fs reaches neither
 * fallocate(FALLOC_FL_PUNCH_HOLE) nor lseek(SEEK_DATA/SEEK_HOLE).
 *
 * punchHole(fd, offset, length) -> Promise<undefined>
 *   fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) on a libuv
 *   thread-pool thread: the file keeps its size, the range reads as zeros afterwards, and the
 *   file system's whole blocks inside it are freed (partial blocks at the edges are zeroed in
 *   place). It runs off the JS thread because the kernel may first write back dirty pages of
 *   the range. The caller must keep `fd` open until the promise settles.
 * preallocate(fd, offset, length) -> Promise<undefined>
 *   fallocate(fd, FALLOC_FL_KEEP_SIZE, offset, length) on a thread-pool thread: reserves the
 *   file system's blocks for the range without changing the file size or any data, so later
 *   small writes there land in one contiguous allocation instead of fragmenting the file
 *   (EOPNOTSUPP where the file system cannot).
 * punchHoleSync(fd, offset, length) -> undefined
 *   The same on the calling thread, for probes that touch no data (a range past the end of
 *   the file: the file system checks that it supports punching, then has nothing to free).
 * seekData(fd, offset) -> number
 *   lseek(SEEK_DATA): the first offset >= `offset` inside allocated data, or -1 when there is
 *   none before the end of the file (ENXIO).
 * seekHole(fd, offset) -> number
 *   lseek(SEEK_HOLE): the first offset >= `offset` inside a hole (the end of the file counts
 *   as one), or -1 when `offset` is at or past the end of the file (ENXIO).
 *
 * Offsets are byte counts up to 2^53 - 1. Bad arguments throw a TypeError (code
 * ERR_INVALID_ARG_TYPE); system-call failures throw (or reject with) an Error whose `code` is
 * the errno name (EOPNOTSUPP when the file system cannot punch holes, EBADF, EINVAL, EIO...),
 * with `errno` and `syscall` properties.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Largest offset JS numbers carry exactly. */
#define MAX_SAFE_OFFSET 9007199254740991LL

static const char *errno_name(int err) {
  switch (err) {
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case EIO: return "EIO";
    case ENOSPC: return "ENOSPC";
    case EFBIG: return "EFBIG";
    case EPERM: return "EPERM";
    case EROFS: return "EROFS";
    case ESPIPE: return "ESPIPE";
    case ENODEV: return "ENODEV";
    case ENOSYS: return "ENOSYS";
    case EINTR: return "EINTR";
    case ETXTBSY: return "ETXTBSY";
    case ENXIO: return "ENXIO";
    case EOVERFLOW: return "EOVERFLOW";
    case ENOMEM: return "ENOMEM";
    case ECANCELED: return "ECANCELED";
    default: return "EUNKNOWN";
  }
}

/* An Error for a failed system call: code = errno name, plus errno and syscall (shared with direct_io.c). */
napi_value errno_error(napi_env env, const char *syscall, int err) {
  char message[160];
  const char *name = errno_name(err);
  snprintf(message, sizeof message, "%s failed: %s (%s)", syscall, name, strerror(err));
  napi_value code, msg, error, v;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, err, &v);
  napi_set_named_property(env, error, "errno", v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, error, "syscall", v);
  return error;
}

static int get_fd(napi_env env, napi_value v, int32_t *fd) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return -1;
  napi_get_value_double(env, v, &d);
  if (!(d >= 0 && d <= 2147483647.0) || d != (double)(int32_t)d) return -1;
  *fd = (int32_t)d;
  return 0;
}

/* A non-negative integer number up to 2^53 - 1 (min = 1 for lengths). */
static int get_offset(napi_env env, napi_value v, int64_t min, int64_t *out) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return -1;
  napi_get_value_double(env, v, &d);
  if (!(d >= (double)min && d <= (double)MAX_SAFE_OFFSET) || d != (double)(int64_t)d) return -1;
  *out = (int64_t)d;
  return 0;
}

/* Parses (fd, offset, length) for the punch functions; throws and returns -1 on bad input. */
static int punch_args(napi_env env, napi_callback_info info, const char *fn, int32_t *fd, int64_t *offset, int64_t *length) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3 || get_fd(env, argv[0], fd) != 0 || get_offset(env, argv[1], 0, offset) != 0 || get_offset(env, argv[2], 1, length) != 0 || *offset > MAX_SAFE_OFFSET - *length) {
    char message[160];
    snprintf(message, sizeof message, "%s(fd, offset, length): fd >= 0, offset >= 0 and length >= 1 integers, offset + length <= 2^53 - 1", fn);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return -1;
  }
  return 0;
}

#define MODE_PUNCH (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)
#define MODE_RESERVE FALLOC_FL_KEEP_SIZE

static int alloc_range(int fd, int mode, int64_t offset, int64_t length) {
  int r;
  do {
    r = fallocate(fd, mode, (off_t)offset, (off_t)length);
  } while (r < 0 && errno == EINTR);
  return r < 0 ? errno : 0;
}

static int punch(int fd, int64_t offset, int64_t length) {
  return alloc_range(fd, MODE_PUNCH, offset, length);
}

/* ---------- punchHole (thread pool) ---------- */

typedef struct punch_work {
  napi_async_work work;
  napi_deferred deferred;
  int mode;
  int fd;
  int64_t offset;
  int64_t length;
  int err;
} punch_work;

static void punch_execute(napi_env env, void *data) {
  (void)env;
  punch_work *w = (punch_work *)data;
  w->err = alloc_range(w->fd, w->mode, w->offset, w->length);
}

static void punch_complete(napi_env env, napi_status status, void *data) {
  punch_work *w = (punch_work *)data;
  if (status == napi_cancelled) w->err = ECANCELED;
  if (w->err == 0) {
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, w->deferred, undefined);
  } else {
    napi_reject_deferred(env, w->deferred, errno_error(env, w->mode == MODE_PUNCH ? "fallocate(FALLOC_FL_PUNCH_HOLE)" : "fallocate(FALLOC_FL_KEEP_SIZE)", w->err));
  }
  napi_delete_async_work(env, w->work);
  free(w);
}

/* Queues fallocate(mode) of (fd, offset, length) on the thread pool; `fn` names the function in errors. */
static napi_value alloc_async(napi_env env, napi_callback_info info, const char *fn, int mode) {
  int32_t fd;
  int64_t offset, length;
  if (punch_args(env, info, fn, &fd, &offset, &length) != 0) return NULL;
  punch_work *w = calloc(1, sizeof *w);
  if (w == NULL) {
    napi_throw(env, errno_error(env, "calloc", ENOMEM));
    return NULL;
  }
  w->mode = mode;
  w->fd = fd;
  w->offset = offset;
  w->length = length;
  napi_value promise, name;
  napi_create_promise(env, &w->deferred, &promise);
  napi_create_string_utf8(env, mode == MODE_PUNCH ? "diskless:punchHole" : "diskless:preallocate", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, punch_execute, punch_complete, w, &w->work) != napi_ok || napi_queue_async_work(env, w->work) != napi_ok) {
    napi_reject_deferred(env, w->deferred, errno_error(env, "napi_queue_async_work", ENOMEM));
    if (w->work != NULL) napi_delete_async_work(env, w->work);
    free(w);
  }
  return promise;
}

static napi_value punch_hole(napi_env env, napi_callback_info info) {
  return alloc_async(env, info, "punchHole", MODE_PUNCH);
}

static napi_value preallocate(napi_env env, napi_callback_info info) {
  return alloc_async(env, info, "preallocate", MODE_RESERVE);
}

static napi_value punch_hole_sync(napi_env env, napi_callback_info info) {
  int32_t fd;
  int64_t offset, length;
  if (punch_args(env, info, "punchHoleSync", &fd, &offset, &length) != 0) return NULL;
  int err = punch(fd, offset, length);
  if (err != 0) napi_throw(env, errno_error(env, "fallocate(FALLOC_FL_PUNCH_HOLE)", err));
  return NULL;
}

/* ---------- seekData / seekHole ---------- */

static napi_value seek(napi_env env, napi_callback_info info, int whence, const char *fn) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  int64_t offset;
  if (argc < 2 || get_fd(env, argv[0], &fd) != 0 || get_offset(env, argv[1], 0, &offset) != 0) {
    char message[128];
    snprintf(message, sizeof message, "%s(fd, offset): fd >= 0 and 0 <= offset <= 2^53 - 1 integers", fn);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return NULL;
  }
  off_t r = lseek(fd, (off_t)offset, whence);
  napi_value out;
  if (r < 0) {
    if (errno == ENXIO) {
      napi_create_int64(env, -1, &out);
      return out;
    }
    napi_throw(env, errno_error(env, whence == SEEK_DATA ? "lseek(SEEK_DATA)" : "lseek(SEEK_HOLE)", errno));
    return NULL;
  }
  napi_create_int64(env, (int64_t)r, &out);
  return out;
}

static napi_value seek_data(napi_env env, napi_callback_info info) {
  return seek(env, info, SEEK_DATA, "seekData");
}

static napi_value seek_hole(napi_env env, napi_callback_info info) {
  return seek(env, info, SEEK_HOLE, "seekHole");
}

napi_value block_alloc_init(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
    { "punchHole", NULL, punch_hole, NULL, NULL, NULL, napi_default_jsproperty, NULL },
    { "punchHoleSync", NULL, punch_hole_sync, NULL, NULL, NULL, napi_default_jsproperty, NULL },
    { "preallocate", NULL, preallocate, NULL, NULL, NULL, napi_default_jsproperty, NULL },
    { "seekData", NULL, seek_data, NULL, NULL, NULL, napi_default_jsproperty, NULL },
    { "seekHole", NULL, seek_hole, NULL, NULL, NULL, napi_default_jsproperty, NULL },
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
  return exports;
}
