/*
 * udp_transfer: a connected UDP socket for one TFTP transfer, in C over Node-API, built into
 * the same addon as diskless_raw.c (which calls udp_transfer_init from its module init).
 *
 * Why: node:dgram allocates a 64 KiB buffer and an rinfo object for every datagram received
 * and goes through a request object per send. A TFTP transfer receives 4-byte ACKs and sends
 * DATA packets that already sit in memory, so this socket delivers an ACK to JS as its block
 * number only, and sends a whole window with one sendmmsg(2).
 *
 * JS surface (wrapped by src/net/udp-transfer-socket.ts, the only caller):
 *   new UdpTransfer(bindAddress, peerAddress, peerPort)
 *       socket(AF_INET or AF_INET6, SOCK_DGRAM|SOCK_NONBLOCK), bind (bindAddress, port 0),
 *       connect (peerAddress, peerPort). The object gets `localPort` (the bound port).
 *   .start(onAck, onEvent)
 *       onAck(block, sent)     a datagram of >= 4 bytes whose opcode is 4 (ACK): its block
 *                              number, and how many staged datagrams it released (-1: none)
 *       onEvent(1, Buffer)     any other datagram (a copy)
 *       onEvent(2, Error)      a receive error (ECONNREFUSED once the client's port is gone)
 *       onEvent(3)             the socket became writable after waitWritable()
 *   .send(buffer) -> bool      one datagram; false when the send buffer is full (EAGAIN)
 *   .sendBatch(buffers, count) -> n   datagrams buffers[0..count-1] with sendmmsg; n < count
 *                              when the send buffer filled up (call waitWritable and resume)
 *   .stage(ackBlock, buffers, count, spinMicros)  the next window, sent from C the moment an
 *                              ACK with block number ackBlock arrives, before JS runs (see
 *                              below); ackBlock -1 or count 0 clears it. spinMicros > 0: after
 *                              a wake-up, busy-wait that long for that ACK (see below)
 *   .statistics()              { spinHits, spinMisses } since open
 *   .waitWritable()            reports onEvent(3) once, when the send buffer has room
 *   .close()                   stops receiving and closes the descriptor; safe twice
 *
 * Errors are thrown as JS Errors whose `code` is the errno name, with `errno`, `syscall` and
 * `peer` properties.
 *
 * The staged window. In a lock-step or windowed transfer the answer to the ACK of the last
 * block sent is known in advance: the next window. JS (which runs the protocol state machine)
 * stages it after each send; when exactly that ACK arrives, on_poll sends the staged window
 * at once with sendmmsg and only then calls onAck(block, sent), which checks that the machine
 * asked for that window and carries on from `sent`. Any other datagram goes to JS untouched.
 * The stage is one-shot: a duplicate of the ACK finds it cleared. The JS array passed to
 * stage() is held by a reference until the next stage(), so its Buffers stay alive; it must
 * not be changed in between (the kernel copies a datagram's bytes when it is sent).
 *
 * Busy-polling for the staged ACK. When a wake-up has been handled and a window is staged with
 * spinMicros > 0, on_poll polls the socket (poll with timeout 0) for up to spinMicros before
 * returning to the event loop. A client that answers within that time is served without this
 * thread going to sleep and being woken again: on a virtual machine a halted vCPU takes tens
 * of microseconds to wake, more than a LAN round trip. Bounds: at most UT_RX_CALLS_PER_WAKEUP
 * rounds per wake-up before the loop gets the thread back (~1 ms at worst), and a spin that
 * ends without the ACK makes the socket skip the next 2, 4, ... 1024 opportunities, so a slow
 * client costs almost nothing. The caller decides when spinning is worth it (TftpServer: only
 * while one transfer is running). The descriptor is polled by libuv (uv_poll); each wake-up takes the
 * pending datagrams with recvmmsg() into a per-socket scratch buffer (2 KiB per datagram: a
 * longer one is delivered truncated).
 */
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <time.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Datagrams taken by one recvmmsg call, and the room for each: a client sends 4-byte ACKs and
 * short ERRORs; a longer datagram arrives truncated to UT_SLOT_BYTES (and so fails to decode). */
#define UT_RX_BATCH 16
#define UT_SLOT_BYTES 2048
#define UT_SCRATCH_BYTES (UT_RX_BATCH * UT_SLOT_BYTES)
/* Datagrams handed to one sendmmsg call (the kernel caps vlen at UIO_MAXIOV = 1024). */
#define UT_MMSG_BATCH 64
/* recvmmsg calls per wake-up before yielding back to the loop (level-triggered: it comes back). */
#define UT_RX_CALLS_PER_WAKEUP 16
#define UT_OPCODE_ACK 4
#define UT_EVENT_PACKET 1
#define UT_EVENT_ERROR 2
#define UT_EVENT_WRITABLE 3

typedef struct udp_transfer {
  napi_env env;
  int fd;                   /* -1 once closed */
  uv_poll_t poll;
  int poll_started;         /* poll handle initialised: must be uv_close()d */
  int handle_closed;        /* uv close callback ran (or the handle never existed) */
  int finalized;            /* the JS wrapper was collected */
  int want_writable;        /* waitWritable() armed UV_WRITABLE */
  napi_ref self;            /* strong while receiving, so the wrapper outlives the poll */
  napi_ref on_ack;
  napi_ref on_event;
  napi_async_context async_context;
  napi_async_cleanup_hook_handle cleanup_hook;
  unsigned char *scratch;
  int32_t st_ack;           /* wire block number that releases the staged window; -1: none */
  uint32_t st_count;        /* datagrams staged */
  uint32_t st_cap;          /* capacity of st_iov / st_msgs */
  struct iovec *st_iov;
  struct mmsghdr *st_msgs;
  napi_ref st_array;        /* the JS array holding the staged Buffers */
  long spin_ns;             /* busy-poll budget for the staged ACK; 0: none */
  uint32_t spin_skip;       /* opportunities left to skip after a miss */
  uint32_t spin_misses_row; /* misses in a row (the skip doubles with each) */
  double spin_hits;
  double spin_misses;
  char peer[INET6_ADDRSTRLEN + 8];
} udp_transfer;

static void ut_on_poll(uv_poll_t *handle, int status, int events);

/* ---------- errors and arguments ---------- */

static napi_value ut_errno_error(napi_env env, const char *syscall, const char *peer, int err) {
  char message[256];
  const char *name = uv_err_name(-err);
  snprintf(message, sizeof message, "%s for TFTP peer %s failed: %s (%s)", syscall, peer, name, strerror(err));
  napi_value msg, code, error, value;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, err, &value);
  napi_set_named_property(env, error, "errno", value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "syscall", value);
  napi_create_string_utf8(env, peer, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "peer", value);
  return error;
}

static napi_value ut_throw_errno(napi_env env, const char *syscall, const char *peer, int err) {
  napi_throw(env, ut_errno_error(env, syscall, peer, err));
  return NULL;
}

static napi_value ut_throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return NULL;
}

/* Parses a numeric IPv4 or IPv6 address (no names, no scope) with `port` into `out`. */
static int ut_sockaddr(napi_env env, napi_value v, uint32_t port, struct sockaddr_storage *out, socklen_t *len) {
  char text[INET6_ADDRSTRLEN + 1];
  size_t n = 0;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) return -1;
  if (napi_get_value_string_utf8(env, v, text, sizeof text, &n) != napi_ok || n == 0 || n >= sizeof text - 1) return -1;
  memset(out, 0, sizeof *out);
  struct sockaddr_in *a4 = (struct sockaddr_in *)out;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
  if (inet_pton(AF_INET, text, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *len = sizeof *a4;
    return 0;
  }
  if (inet_pton(AF_INET6, text, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    *len = sizeof *a6;
    return 0;
  }
  return -1;
}

/* The bytes of a Buffer (any Uint8Array); -1 when `v` is not one. */
static int ut_bytes(napi_env env, napi_value v, void **data, size_t *length) {
  bool is_ta = false;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return -1;
  napi_get_typedarray_info(env, v, &type, length, data, &ab, &offset);
  return type == napi_uint8_array ? 0 : -1;
}

/* ---------- lifetime (same scheme as diskless_raw.c) ---------- */

static void ut_maybe_free(udp_transfer *s) {
  if (s->finalized && s->handle_closed) {
    free(s->st_iov);
    free(s->st_msgs);
    free(s->scratch);
    free(s);
  }
}

static void ut_on_handle_closed(uv_handle_t *handle) {
  udp_transfer *s = (udp_transfer *)handle->data;
  s->handle_closed = 1;
  if (s->async_context != NULL && !s->finalized) {
    napi_handle_scope scope;
    napi_open_handle_scope(s->env, &scope);
    napi_async_destroy(s->env, s->async_context);
    napi_close_handle_scope(s->env, scope);
    s->async_context = NULL;
  }
  if (s->cleanup_hook != NULL) {
    napi_async_cleanup_hook_handle h = s->cleanup_hook;
    s->cleanup_hook = NULL;
    napi_remove_async_cleanup_hook(h);
  }
  ut_maybe_free(s);
}

static void ut_delete_callbacks(udp_transfer *s) {
  if (s->on_ack != NULL) { napi_delete_reference(s->env, s->on_ack); s->on_ack = NULL; }
  if (s->on_event != NULL) { napi_delete_reference(s->env, s->on_event); s->on_event = NULL; }
  if (s->st_array != NULL) { napi_delete_reference(s->env, s->st_array); s->st_array = NULL; }
  s->st_ack = -1;
}

/* Stops receiving and closes the descriptor. Idempotent. */
static void ut_close(udp_transfer *s, int from_teardown) {
  if (s->fd < 0) return;
  if (s->poll_started) {
    uv_poll_stop(&s->poll);
    /* uv_close before close(fd): libuv must drop the fd from epoll before the number is reused. */
    uv_close((uv_handle_t *)&s->poll, ut_on_handle_closed);
  }
  close(s->fd);
  s->fd = -1;
  if (!s->finalized) {
    ut_delete_callbacks(s);
    if (s->self != NULL && s->poll_started) { uint32_t rc; napi_reference_unref(s->env, s->self, &rc); }
  }
  if (!from_teardown && s->cleanup_hook != NULL) {
    napi_async_cleanup_hook_handle h = s->cleanup_hook;
    s->cleanup_hook = NULL;
    napi_remove_async_cleanup_hook(h);
  }
}

static void ut_on_env_teardown(napi_async_cleanup_hook_handle handle, void *arg) {
  udp_transfer *s = (udp_transfer *)arg;
  s->cleanup_hook = handle;
  if (s->fd >= 0) ut_close(s, 1);
  else if (s->handle_closed) { s->cleanup_hook = NULL; napi_remove_async_cleanup_hook(handle); }
}

static void ut_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  udp_transfer *s = (udp_transfer *)data;
  if (s->self != NULL) { napi_delete_reference(env, s->self); s->self = NULL; }
  ut_delete_callbacks(s);
  s->finalized = 1;
  if (s->fd >= 0) {
    if (s->poll_started) { uv_poll_stop(&s->poll); uv_close((uv_handle_t *)&s->poll, ut_on_handle_closed); }
    close(s->fd);
    s->fd = -1;
  }
  ut_maybe_free(s);
}

static udp_transfer *ut_unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  udp_transfer *s = NULL;
  napi_get_cb_info(env, info, argc, argv, &self, NULL);
  if (napi_unwrap(env, self, (void **)&s) != napi_ok || s == NULL) {
    ut_throw_type(env, "UdpTransfer method called on an object that is not a UdpTransfer");
    return NULL;
  }
  return s;
}

/* ---------- constructor ---------- */

static napi_value ut_construct(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  uint32_t port = 0;
  napi_valuetype t;
  struct sockaddr_storage local, peer;
  socklen_t local_len = 0, peer_len = 0;
  if (argc < 3 || napi_typeof(env, argv[2], &t) != napi_ok || t != napi_number) return ut_throw_type(env, "UdpTransfer(bindAddress, peerAddress, peerPort): peerPort must be a number");
  double d;
  napi_get_value_double(env, argv[2], &d);
  if (!(d >= 1 && d <= 65535) || d != (double)(uint32_t)d) return ut_throw_type(env, "UdpTransfer: peerPort must be an integer 1..65535");
  port = (uint32_t)d;
  if (ut_sockaddr(env, argv[0], 0, &local, &local_len) != 0) return ut_throw_type(env, "UdpTransfer: bindAddress must be a numeric IPv4 or IPv6 address");
  if (ut_sockaddr(env, argv[1], port, &peer, &peer_len) != 0) return ut_throw_type(env, "UdpTransfer: peerAddress must be a numeric IPv4 or IPv6 address");
  char peer_text[INET6_ADDRSTRLEN + 8];
  {
    char a[INET6_ADDRSTRLEN];
    if (peer.ss_family == AF_INET) inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr, a, sizeof a);
    else inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&peer)->sin6_addr, a, sizeof a);
    snprintf(peer_text, sizeof peer_text, peer.ss_family == AF_INET ? "%s:%u" : "[%s]:%u", a, port);
  }
  if (local.ss_family != peer.ss_family) return ut_throw_errno(env, "bind", peer_text, EAFNOSUPPORT);

  int fd = socket(peer.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ut_throw_errno(env, "socket", peer_text, errno);
  if (bind(fd, (struct sockaddr *)&local, local_len) < 0) { int e = errno; close(fd); return ut_throw_errno(env, "bind", peer_text, e); }
  if (connect(fd, (struct sockaddr *)&peer, peer_len) < 0) { int e = errno; close(fd); return ut_throw_errno(env, "connect", peer_text, e); }
  struct sockaddr_storage bound;
  socklen_t bound_len = sizeof bound;
  if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) < 0) { int e = errno; close(fd); return ut_throw_errno(env, "getsockname", peer_text, e); }
  uint16_t local_port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port : ((struct sockaddr_in6 *)&bound)->sin6_port);

  udp_transfer *s = calloc(1, sizeof *s);
  unsigned char *scratch = malloc(UT_SCRATCH_BYTES);
  if (s == NULL || scratch == NULL) { free(s); free(scratch); close(fd); return ut_throw_errno(env, "malloc", peer_text, ENOMEM); }
  s->env = env;
  s->fd = fd;
  s->scratch = scratch;
  s->handle_closed = 1; /* no handle until start() */
  s->st_ack = -1;
  memcpy(s->peer, peer_text, sizeof s->peer);
  if (napi_wrap(env, self, s, ut_finalize, NULL, NULL) != napi_ok) {
    close(fd); free(scratch); free(s);
    return ut_throw_errno(env, "napi_wrap", peer_text, EINVAL);
  }
  napi_create_reference(env, self, 0, &s->self);
  napi_value v;
  napi_create_uint32(env, local_port, &v);
  napi_set_named_property(env, self, "localPort", v);
  return self;
}

/* ---------- receive ---------- */

/* Calls `ref` with argv from the loop; a throwing handler surfaces as 'uncaughtException'. */
static void ut_call(udp_transfer *s, napi_ref ref, size_t argc, napi_value *argv) {
  napi_env env = s->env;
  napi_value cb, recv, result;
  if (ref == NULL || s->self == NULL) return;
  napi_get_reference_value(env, ref, &cb);
  napi_get_reference_value(env, s->self, &recv);
  if (cb == NULL || recv == NULL) return;
  if (napi_make_callback(env, s->async_context, recv, cb, argc, argv, &result) == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
}

static void ut_event(udp_transfer *s, int kind, napi_value payload) {
  napi_value argv[2];
  napi_create_int32(s->env, kind, &argv[0]);
  if (payload == NULL) napi_get_undefined(s->env, &argv[1]);
  else argv[1] = payload;
  ut_call(s, s->on_event, 2, argv);
}

/* Sends the staged window (clearing the stage) and returns how many datagrams left; stops at
 * EAGAIN (JS sends the rest) or at an error, stored in *error. */
static int32_t ut_send_staged(udp_transfer *s, int *error) {
  uint32_t count = s->st_count, done = 0;
  s->st_ack = -1;
  while (done < count) {
    uint32_t n = count - done > 1024 ? 1024 : count - done;
    int r = n == 1 ? (send(s->fd, s->st_iov[done].iov_base, s->st_iov[done].iov_len, 0) < 0 ? -1 : 1) : sendmmsg(s->fd, s->st_msgs + done, n, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) *error = errno;
      break;
    }
    done += (uint32_t)r;
  }
  return (int32_t)done;
}

/* Polls the socket for up to s->spin_ns; 1 when a datagram (or an error) is waiting. */
static int ut_spin_readable(udp_transfer *s) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    struct pollfd p = { .fd = s->fd, .events = POLLIN };
    if (poll(&p, 1, 0) > 0) return 1;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) > s->spin_ns) return 0;
  }
}

/* After a wake-up's datagrams are handled: 1 when the staged ACK came within the spin budget
 * (handle it now), 0 to go back to the event loop. */
static int ut_spin_for_ack(udp_transfer *s) {
  if (s->fd < 0 || s->st_ack < 0 || s->spin_ns <= 0) return 0;
  if (s->spin_skip > 0) { s->spin_skip--; return 0; }
  if (ut_spin_readable(s)) {
    s->spin_hits++;
    s->spin_misses_row = 0;
    return 1;
  }
  s->spin_misses++;
  if (s->spin_misses_row < 10) s->spin_misses_row++;
  s->spin_skip = 1u << s->spin_misses_row;
  return 0;
}

static void ut_on_poll(uv_poll_t *handle, int status, int events) {
  udp_transfer *s = (udp_transfer *)handle->data;
  napi_env env = s->env;
  if (s->fd < 0) return;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  if (status < 0) {
    /* POLLERR: a pending socket error (ICMP port unreachable...). libuv stopped the handle;
     * recv below reports the error, then polling resumes. */
    uv_poll_start(&s->poll, UV_READABLE | (s->want_writable ? UV_WRITABLE : 0), ut_on_poll);
    events |= UV_READABLE;
  }
  if ((events & UV_WRITABLE) && s->want_writable) {
    s->want_writable = 0;
    uv_poll_start(&s->poll, UV_READABLE, ut_on_poll);
    ut_event(s, UT_EVENT_WRITABLE, NULL);
  }
  /* One recvmmsg takes every datagram queued (up to UT_RX_BATCH). */
  struct mmsghdr msgs[UT_RX_BATCH];
  struct iovec iov[UT_RX_BATCH];
  for (int call = 0; call < UT_RX_CALLS_PER_WAKEUP && s->fd >= 0 && (events & UV_READABLE); call++) {
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < UT_RX_BATCH; i++) {
      iov[i].iov_base = s->scratch + (size_t)i * UT_SLOT_BYTES;
      iov[i].iov_len = UT_SLOT_BYTES;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(s->fd, msgs, UT_RX_BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      /* Reading the error clears it; the transfer decides whether to go on. */
      ut_event(s, UT_EVENT_ERROR, ut_errno_error(env, "recvmmsg", s->peer, errno));
      break;
    }
    for (int i = 0; i < n && s->fd >= 0; i++) {
      const unsigned char *d = iov[i].iov_base;
      size_t r = msgs[i].msg_len;
      if (r >= 4 && d[0] == 0 && d[1] == UT_OPCODE_ACK) {
        uint32_t number = ((uint32_t)d[2] << 8) | d[3];
        int32_t sent = -1;
        int send_error = 0;
        if (s->st_ack >= 0 && number == (uint32_t)s->st_ack) sent = ut_send_staged(s, &send_error);
        napi_value argv[2];
        napi_create_uint32(env, number, &argv[0]);
        napi_create_int32(env, sent, &argv[1]);
        ut_call(s, s->on_ack, 2, argv);
        if (send_error != 0 && s->fd >= 0) ut_event(s, UT_EVENT_ERROR, ut_errno_error(env, "sendmmsg", s->peer, send_error));
      } else {
        napi_value copy;
        napi_create_buffer_copy(env, r, d, NULL, &copy);
        ut_event(s, UT_EVENT_PACKET, copy);
      }
    }
    /* A short batch means the queue was empty: no second call just to read EAGAIN (measured:
     * the client's next ACK is practically never there yet when JS has answered), unless a
     * busy-poll for the staged ACK finds one. */
    if (n < UT_RX_BATCH && !(call + 1 < UT_RX_CALLS_PER_WAKEUP && ut_spin_for_ack(s))) break;
  }
  napi_close_handle_scope(env, scope);
}

static napi_value ut_start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  udp_transfer *s = ut_unwrap(env, info, &argc, argv);
  if (s == NULL) return NULL;
  napi_valuetype t0, t1;
  if (argc < 2 || napi_typeof(env, argv[0], &t0) != napi_ok || napi_typeof(env, argv[1], &t1) != napi_ok || t0 != napi_function || t1 != napi_function)
    return ut_throw_type(env, "start(onAck, onEvent): both must be functions");
  if (s->fd < 0) return ut_throw_errno(env, "start", s->peer, EBADF);
  if (s->poll_started) return ut_throw_errno(env, "start", s->peer, EALREADY);
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  int r = uv_poll_init_socket(loop, &s->poll, s->fd);
  if (r < 0) return ut_throw_errno(env, "uv_poll_init", s->peer, -r);
  s->poll.data = s;
  s->poll_started = 1;
  s->handle_closed = 0;
  napi_value resource_name;
  napi_create_string_utf8(env, "diskless:UdpTransfer", NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, NULL, resource_name, &s->async_context);
  napi_create_reference(env, argv[0], 1, &s->on_ack);
  napi_create_reference(env, argv[1], 1, &s->on_event);
  uint32_t rc;
  napi_reference_ref(env, s->self, &rc);
  napi_add_async_cleanup_hook(env, ut_on_env_teardown, s, &s->cleanup_hook);
  r = uv_poll_start(&s->poll, UV_READABLE, ut_on_poll);
  if (r < 0) { ut_close(s, 0); return ut_throw_errno(env, "uv_poll_start", s->peer, -r); }
  return NULL;
}

/* ---------- send ---------- */

static napi_value ut_send(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  udp_transfer *s = ut_unwrap(env, info, &argc, argv);
  if (s == NULL) return NULL;
  void *data;
  size_t length;
  if (argc < 1 || ut_bytes(env, argv[0], &data, &length) != 0) return ut_throw_type(env, "send(packet): packet must be a Buffer");
  if (s->fd < 0) return ut_throw_errno(env, "send", s->peer, EBADF);
  napi_value out;
  for (;;) {
    ssize_t r = send(s->fd, data, length, 0);
    if (r >= 0) { napi_get_boolean(env, true, &out); return out; }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) { napi_get_boolean(env, false, &out); return out; }
    return ut_throw_errno(env, "send", s->peer, errno);
  }
}

static napi_value ut_send_batch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  udp_transfer *s = ut_unwrap(env, info, &argc, argv);
  if (s == NULL) return NULL;
  bool is_array = false;
  uint32_t length = 0, count = 0;
  if (argc >= 1) napi_is_array(env, argv[0], &is_array);
  if (!is_array) return ut_throw_type(env, "sendBatch(packets, count): packets must be an array of Buffers");
  napi_get_array_length(env, argv[0], &length);
  napi_valuetype t;
  double d;
  if (argc < 2 || napi_typeof(env, argv[1], &t) != napi_ok || t != napi_number) return ut_throw_type(env, "sendBatch(packets, count): count must be a number");
  napi_get_value_double(env, argv[1], &d);
  if (!(d >= 0 && d <= length) || d != (double)(uint32_t)d) return ut_throw_type(env, "sendBatch(packets, count): count must be an integer 0..packets.length");
  count = (uint32_t)d;
  if (s->fd < 0) return ut_throw_errno(env, "sendmmsg", s->peer, EBADF);

  struct mmsghdr msgs[UT_MMSG_BATCH];
  struct iovec iov[UT_MMSG_BATCH];
  uint32_t sent = 0;
  while (sent < count) {
    uint32_t n = count - sent < UT_MMSG_BATCH ? count - sent : UT_MMSG_BATCH;
    for (uint32_t i = 0; i < n; i++) {
      napi_value element;
      napi_get_element(env, argv[0], sent + i, &element);
      if (ut_bytes(env, element, &iov[i].iov_base, &iov[i].iov_len) != 0) return ut_throw_type(env, "sendBatch(packets, count): packets must be an array of Buffers");
      memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    uint32_t done = 0;
    while (done < n) {
      /* One datagram (windowsize 1): plain send(2), no mmsghdr walk in the kernel. */
      int r = n - done == 1 ? (send(s->fd, iov[done].iov_base, iov[done].iov_len, 0) < 0 ? -1 : 1) : sendmmsg(s->fd, msgs + done, n - done, 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) goto out;
        return ut_throw_errno(env, n - done == 1 ? "send" : "sendmmsg", s->peer, errno);
      }
      done += (uint32_t)r;
      sent += (uint32_t)r;
    }
  }
out:;
  napi_value result;
  napi_create_uint32(env, sent, &result);
  return result;
}

static napi_value ut_stage(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  udp_transfer *s = ut_unwrap(env, info, &argc, argv);
  if (s == NULL) return NULL;
  napi_valuetype t0, t2, t3 = napi_undefined;
  double spin = 0;
  if (argc >= 4) napi_typeof(env, argv[3], &t3);
  if (t3 == napi_number) napi_get_value_double(env, argv[3], &spin);
  else if (t3 != napi_undefined) return ut_throw_type(env, "stage: spinMicros must be a number");
  if (!(spin >= 0 && spin <= 1000)) return ut_throw_type(env, "stage: spinMicros must be 0..1000");
  bool is_array = false;
  double ack, count;
  uint32_t length = 0;
  if (argc < 3 || napi_typeof(env, argv[0], &t0) != napi_ok || napi_typeof(env, argv[2], &t2) != napi_ok || t0 != napi_number || t2 != napi_number)
    return ut_throw_type(env, "stage(ackBlock, packets, count): ackBlock and count must be numbers");
  napi_is_array(env, argv[1], &is_array);
  if (!is_array) return ut_throw_type(env, "stage(ackBlock, packets, count): packets must be an array of Buffers");
  napi_get_array_length(env, argv[1], &length);
  napi_get_value_double(env, argv[0], &ack);
  napi_get_value_double(env, argv[2], &count);
  if (!(ack >= -1 && ack <= 65535) || ack != (double)(int32_t)ack) return ut_throw_type(env, "stage: ackBlock must be an integer -1..65535");
  if (!(count >= 0 && count <= length) || count != (double)(uint32_t)count) return ut_throw_type(env, "stage: count must be an integer 0..packets.length");
  if (s->fd < 0) return ut_throw_errno(env, "stage", s->peer, EBADF);
  s->st_ack = -1;
  s->spin_ns = (long)(spin * 1000);
  uint32_t n = (uint32_t)count;
  if (ack < 0 || n == 0) return NULL;
  if (n > s->st_cap) {
    struct iovec *iov = realloc(s->st_iov, n * sizeof *iov);
    if (iov != NULL) s->st_iov = iov;
    struct mmsghdr *msgs = realloc(s->st_msgs, n * sizeof *msgs);
    if (msgs != NULL) s->st_msgs = msgs;
    if (iov == NULL || msgs == NULL) return ut_throw_errno(env, "stage", s->peer, ENOMEM);
    s->st_cap = n;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value element;
    napi_get_element(env, argv[1], i, &element);
    if (ut_bytes(env, element, &s->st_iov[i].iov_base, &s->st_iov[i].iov_len) != 0) return ut_throw_type(env, "stage(ackBlock, packets, count): packets must be an array of Buffers");
    memset(&s->st_msgs[i], 0, sizeof s->st_msgs[i]);
    s->st_msgs[i].msg_hdr.msg_iov = &s->st_iov[i];
    s->st_msgs[i].msg_hdr.msg_iovlen = 1;
  }
  /* Hold the array (and so its Buffers) until the next stage(); usually the same array. */
  bool same = false;
  if (s->st_array != NULL) {
    napi_value held;
    napi_get_reference_value(env, s->st_array, &held);
    if (held != NULL) napi_strict_equals(env, held, argv[1], &same);
    if (!same) { napi_delete_reference(env, s->st_array); s->st_array = NULL; }
  }
  if (!same) napi_create_reference(env, argv[1], 1, &s->st_array);
  s->st_count = n;
  s->st_ack = (int32_t)ack;
  return NULL;
}

static napi_value ut_statistics(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  udp_transfer *s = ut_unwrap(env, info, &argc, NULL);
  if (s == NULL) return NULL;
  napi_value out, v;
  napi_create_object(env, &out);
  napi_create_double(env, s->spin_hits, &v);
  napi_set_named_property(env, out, "spinHits", v);
  napi_create_double(env, s->spin_misses, &v);
  napi_set_named_property(env, out, "spinMisses", v);
  return out;
}

static napi_value ut_wait_writable(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  udp_transfer *s = ut_unwrap(env, info, &argc, NULL);
  if (s == NULL) return NULL;
  if (s->fd < 0) return ut_throw_errno(env, "waitWritable", s->peer, EBADF);
  if (!s->poll_started) return ut_throw_errno(env, "waitWritable", s->peer, ENOTCONN);
  if (s->want_writable) return NULL;
  s->want_writable = 1;
  int r = uv_poll_start(&s->poll, UV_READABLE | UV_WRITABLE, ut_on_poll);
  if (r < 0) return ut_throw_errno(env, "uv_poll_start", s->peer, -r);
  return NULL;
}

static napi_value ut_close_js(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  udp_transfer *s = ut_unwrap(env, info, &argc, NULL);
  if (s == NULL) return NULL;
  ut_close(s, 0);
  return NULL;
}

/* ---------- module ---------- */

/* Adds the UdpTransfer class to the addon's exports (called from diskless_raw.c's init). */
napi_value udp_transfer_init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
    { "start", NULL, ut_start, NULL, NULL, NULL, napi_default, NULL },
    { "send", NULL, ut_send, NULL, NULL, NULL, napi_default, NULL },
    { "sendBatch", NULL, ut_send_batch, NULL, NULL, NULL, napi_default, NULL },
    { "stage", NULL, ut_stage, NULL, NULL, NULL, napi_default, NULL },
    { "statistics", NULL, ut_statistics, NULL, NULL, NULL, napi_default, NULL },
    { "waitWritable", NULL, ut_wait_writable, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, ut_close_js, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_value cls;
  napi_define_class(env, "UdpTransfer", NAPI_AUTO_LENGTH, ut_construct, NULL, sizeof methods / sizeof methods[0], methods, &cls);
  napi_set_named_property(env, exports, "UdpTransfer", cls);
  return exports;
}
