/*
 * diskless_raw: AF_PACKET raw Ethernet sockets for Node.js, in C over Node-API.
 *
 * The addon also exports UdpTransfer, the TFTP transfer socket of udp_transfer.c.
 *
 * JS surface (wrapped by src/net/open-raw-socket.ts, which is the only caller):
 *   interfaceInfo(ifname) -> { ifname, ifindex, mac: Buffer(6), mtu, hardwareType }
 *   new RawSocket(ifname, ifindex, etherType, filter|null, receiveBufferBytes)
 *     .start(callback)   callback(err|null, frames: Buffer[]) once per batch, from the loop
 *     .send(frame)       one whole Ethernet frame, header included, no FCS
 *     .sendMany(frames)  several, in order, with sendmmsg (throws with .sent on an error)
 *     .statistics()      { received, kernelDrops, truncated } since open
 *     .close()           stops receiving and closes the descriptor; safe twice
 *
 * The socket is opened with protocol 0 (it receives nothing), the BPF filter is attached, and
 * only then is it bound to (ifindex, etherType): no frame from another interface or an
 * unfiltered frame can slip in between socket() and bind(). Receive is a uv_poll on the
 * descriptor; each wake-up drains every pending frame with recvmmsg() (16 at a time) into scratch
 * and copies each frame into its own Node Buffer, delivered in batches of up to
 * RX_BATCH_FRAMES per JS call. Frames this host transmits on the interface
 * (sll_pkttype == PACKET_OUTGOING) are never delivered.
 *
 * Errors are thrown as JS Errors whose `code` is the errno name (ENODEV, EPERM...), with
 * `errno`, `syscall` and `ifname` properties.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sendmmsg */
#endif
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <poll.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

/* Frames per JS call: bounds the handles alive in one scope while still amortising the call. */
#define RX_BATCH_FRAMES 64
/* Largest frame accepted: above any MTU plus header; larger ones (GRO) are counted as truncated. */
#define RX_SCRATCH_BYTES (65536 + 64)
/* Frames per recvmmsg call (each has its own RX_SCRATCH_BYTES slot of scratch). */
#define RX_MMSG_FRAMES 16
/* POLLERR wake-ups in a row without a frame before receiving is given up (see on_readable). */
#define POLLERR_STREAK_LIMIT 1000
/* How long send() waits for room in the socket's send queue before reporting EAGAIN. */
#define TX_WAIT_MS 100

typedef struct raw_socket {
  napi_env env;
  int fd;                        /* -1 once closed */
  uv_poll_t poll;
  int poll_started;              /* poll handle initialised: must be uv_close()d */
  int handle_closed;             /* uv close callback ran (or the handle never existed) */
  int finalized;                 /* the JS wrapper was collected */
  napi_ref self;                 /* strong while receiving, so the wrapper outlives the poll */
  napi_ref callback;
  napi_async_context async_context;
  napi_async_cleanup_hook_handle cleanup_hook;
  uint64_t received;
  uint64_t kernel_drops;
  uint64_t truncated;
  int pollerr_streak;            /* POLLERR wake-ups since the last frame */
  unsigned char *scratch;
  char ifname[IF_NAMESIZE + 1];
} raw_socket;

/* ---------- errors ---------- */

static napi_value make_errno_error(napi_env env, const char *syscall, const char *ifname, int err) {
  char message[256];
  const char *name = uv_err_name(-err);
  snprintf(message, sizeof message, "%s on interface %s failed: %s (%s)", syscall, ifname, name, strerror(err));
  napi_value msg, code, error, value;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, err, &value);
  napi_set_named_property(env, error, "errno", value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "syscall", value);
  napi_create_string_utf8(env, ifname, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "ifname", value);
  return error;
}

static napi_value throw_errno(napi_env env, const char *syscall, const char *ifname, int err) {
  napi_throw(env, make_errno_error(env, syscall, ifname, err));
  return NULL;
}

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return NULL;
}

/* Reads a JS string argument into buf (NUL-terminated); fails when it does not fit. */
static int get_ifname(napi_env env, napi_value v, char *buf, size_t size) {
  napi_valuetype t;
  size_t len = 0;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) return -1;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return -1;
  if (len == 0 || len >= size) return -2;
  napi_get_value_string_utf8(env, v, buf, size, &len);
  return 0;
}

static int get_u32(napi_env env, napi_value v, uint32_t *out) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return -1;
  napi_get_value_double(env, v, &d);
  if (!(d >= 0 && d <= 4294967295.0) || d != (double)(uint32_t)d) return -1;
  *out = (uint32_t)d;
  return 0;
}

/* ---------- interface lookup ---------- */

static napi_value interface_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char name[IF_NAMESIZE + 1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int r = argc < 1 ? -1 : get_ifname(env, argv[0], name, IF_NAMESIZE);
  if (r == -1) return throw_type(env, "interfaceInfo(ifname): ifname must be a non-empty string");
  if (r == -2) return throw_errno(env, "SIOCGIFINDEX", "(a name longer than 15 bytes)", ENODEV);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", name, errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, strnlen(name, IF_NAMESIZE - 1));
  if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) { int e = errno; close(fd); return throw_errno(env, "SIOCGIFINDEX", name, e); }
  int ifindex = ifr.ifr_ifindex;
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) { int e = errno; close(fd); return throw_errno(env, "SIOCGIFHWADDR", name, e); }
  unsigned char mac[6];
  memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  int hwtype = ifr.ifr_hwaddr.sa_family;
  if (ioctl(fd, SIOCGIFMTU, &ifr) < 0) { int e = errno; close(fd); return throw_errno(env, "SIOCGIFMTU", name, e); }
  int mtu = ifr.ifr_mtu;
  close(fd);

  napi_value out, v;
  napi_create_object(env, &out);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, out, "ifname", v);
  napi_create_int32(env, ifindex, &v);
  napi_set_named_property(env, out, "ifindex", v);
  napi_create_buffer_copy(env, 6, mac, NULL, &v);
  napi_set_named_property(env, out, "mac", v);
  napi_create_int32(env, mtu, &v);
  napi_set_named_property(env, out, "mtu", v);
  napi_create_int32(env, hwtype, &v);
  napi_set_named_property(env, out, "hardwareType", v);
  return out;
}

/* ---------- lifetime ---------- */

static void maybe_free(raw_socket *s) {
  if (s->finalized && s->handle_closed) {
    free(s->scratch);
    free(s);
  }
}

static void on_handle_closed(uv_handle_t *handle) {
  raw_socket *s = (raw_socket *)handle->data;
  s->handle_closed = 1;
  if (s->async_context != NULL && !s->finalized) {
    napi_handle_scope scope;
    napi_open_handle_scope(s->env, &scope);
    napi_async_destroy(s->env, s->async_context);
    napi_close_handle_scope(s->env, scope);
    s->async_context = NULL;
  }
  if (s->cleanup_hook != NULL) {
    /* Only reached when the environment is tearing down: tell Node we are done. */
    napi_async_cleanup_hook_handle h = s->cleanup_hook;
    s->cleanup_hook = NULL;
    napi_remove_async_cleanup_hook(h);
  }
  maybe_free(s);
}

/* Stops receiving and closes the descriptor. Idempotent. `from_teardown` keeps the cleanup
 * hook registered until the handle's close callback has run. */
static void close_socket(raw_socket *s, int from_teardown) {
  if (s->fd < 0) return;
  if (s->poll_started) {
    uv_poll_stop(&s->poll);
    /* uv_close before close(fd): libuv removes the fd from epoll, and the number must not
     * have been reused by then. */
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
  }
  close(s->fd);
  s->fd = -1;
  if (!s->finalized) {
    if (s->callback != NULL) { napi_delete_reference(s->env, s->callback); s->callback = NULL; }
    if (s->self != NULL && s->poll_started) { uint32_t rc; napi_reference_unref(s->env, s->self, &rc); }
  }
  if (!from_teardown && s->cleanup_hook != NULL) {
    napi_async_cleanup_hook_handle h = s->cleanup_hook;
    s->cleanup_hook = NULL;
    napi_remove_async_cleanup_hook(h);
  }
}

static void on_env_teardown(napi_async_cleanup_hook_handle handle, void *arg) {
  raw_socket *s = (raw_socket *)arg;
  s->cleanup_hook = handle;
  if (s->fd >= 0) close_socket(s, 1);
  else if (s->handle_closed) { s->cleanup_hook = NULL; napi_remove_async_cleanup_hook(handle); }
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  raw_socket *s = (raw_socket *)data;
  if (s->self != NULL) { napi_delete_reference(env, s->self); s->self = NULL; }
  if (s->callback != NULL) { napi_delete_reference(env, s->callback); s->callback = NULL; }
  s->finalized = 1;
  if (s->fd >= 0) {
    if (s->poll_started) { uv_poll_stop(&s->poll); uv_close((uv_handle_t *)&s->poll, on_handle_closed); }
    close(s->fd);
    s->fd = -1;
  }
  maybe_free(s);
}

static raw_socket *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  raw_socket *s = NULL;
  napi_get_cb_info(env, info, argc, argv, &self, NULL);
  if (napi_unwrap(env, self, (void **)&s) != napi_ok || s == NULL) {
    throw_type(env, "RawSocket method called on an object that is not a RawSocket");
    return NULL;
  }
  return s;
}

/* ---------- constructor ---------- */

static napi_value construct(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  char name[IF_NAMESIZE + 1];
  uint32_t ifindex, ethertype, rcvbuf, sndbuf = 0;
  if (argc < 5 || get_ifname(env, argv[0], name, IF_NAMESIZE) != 0)
    return throw_type(env, "RawSocket(ifname, ifindex, etherType, filter, receiveBufferBytes): ifname must be a string");
  if (get_u32(env, argv[1], &ifindex) != 0 || ifindex == 0 || ifindex > INT32_MAX) return throw_type(env, "RawSocket: ifindex must be a positive integer");
  if (get_u32(env, argv[2], &ethertype) != 0 || ethertype > 0xffff) return throw_type(env, "RawSocket: etherType must be an integer 0..65535");
  if (get_u32(env, argv[4], &rcvbuf) != 0 || rcvbuf > INT32_MAX) return throw_type(env, "RawSocket: receiveBufferBytes must be a non-negative integer (0 keeps the default)");
  if (argc >= 6 && (get_u32(env, argv[5], &sndbuf) != 0 || sndbuf > INT32_MAX)) return throw_type(env, "RawSocket: sendBufferBytes must be a non-negative integer (0 keeps the default)");

  /* Filter: null/undefined, or an array of [code, jt, jf, k]. */
  struct sock_filter *prog = NULL;
  uint32_t prog_len = 0;
  napi_valuetype ft;
  napi_typeof(env, argv[3], &ft);
  if (ft != napi_null && ft != napi_undefined) {
    bool is_array = false;
    napi_is_array(env, argv[3], &is_array);
    if (!is_array) return throw_type(env, "RawSocket: filter must be an array of [code, jt, jf, k]");
    napi_get_array_length(env, argv[3], &prog_len);
    if (prog_len == 0 || prog_len > BPF_MAXINSNS) return throw_type(env, "RawSocket: filter must have 1..4096 instructions");
    prog = calloc(prog_len, sizeof *prog);
    if (prog == NULL) return throw_errno(env, "calloc", name, ENOMEM);
    for (uint32_t i = 0; i < prog_len; i++) {
      napi_value ins, f;
      uint32_t code, jt, jf, k, n = 0;
      bool arr = false;
      napi_get_element(env, argv[3], i, &ins);
      napi_is_array(env, ins, &arr);
      if (arr) napi_get_array_length(env, ins, &n);
      if (!arr || n != 4) { free(prog); return throw_type(env, "RawSocket: each filter instruction must be [code, jt, jf, k]"); }
      napi_get_element(env, ins, 0, &f); if (get_u32(env, f, &code) != 0 || code > 0xffff) goto bad;
      napi_get_element(env, ins, 1, &f); if (get_u32(env, f, &jt) != 0 || jt > 0xff) goto bad;
      napi_get_element(env, ins, 2, &f); if (get_u32(env, f, &jf) != 0 || jf > 0xff) goto bad;
      napi_get_element(env, ins, 3, &f); if (get_u32(env, f, &k) != 0) goto bad;
      prog[i].code = (uint16_t)code; prog[i].jt = (uint8_t)jt; prog[i].jf = (uint8_t)jf; prog[i].k = k;
      continue;
    bad:
      free(prog);
      return throw_type(env, "RawSocket: filter instruction fields out of range (code u16, jt u8, jf u8, k u32)");
    }
  }

  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { free(prog); return throw_errno(env, "socket(AF_PACKET)", name, errno); }
  const char *failed = NULL;
  if (rcvbuf > 0) {
    int v = (int)rcvbuf;
    /* SO_RCVBUFFORCE passes net.core.rmem_max (needs CAP_NET_ADMIN); fall back to the capped one. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v) < 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v) < 0) failed = "setsockopt(SO_RCVBUF)";
  }
  if (failed == NULL && sndbuf > 0) {
    int v = (int)sndbuf;
    /* A frame stays charged to the sender until the receiver consumes it (a veth peer's packet
       socket, a NIC's ring): a target with many large answers in flight needs room for them,
       or send() has to wait. */
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof v) < 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v) < 0) failed = "setsockopt(SO_SNDBUF)";
  }
  if (failed == NULL) {
    int one = 1;
    /* Best effort (Linux >= 4.20); the pkttype check in the receive loop covers older kernels. */
    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
  }
  if (failed == NULL && prog != NULL) {
    struct sock_fprog fprog = { .len = (unsigned short)prog_len, .filter = prog };
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog) < 0) failed = "setsockopt(SO_ATTACH_FILTER)";
  }
  free(prog);
  if (failed == NULL) {
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons((uint16_t)ethertype);
    sll.sll_ifindex = (int)ifindex;
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) failed = "bind(AF_PACKET)";
  }
  if (failed != NULL) { int e = errno; close(fd); return throw_errno(env, failed, name, e); }

  raw_socket *s = calloc(1, sizeof *s);
  unsigned char *scratch = malloc((size_t)RX_MMSG_FRAMES * RX_SCRATCH_BYTES);
  if (s == NULL || scratch == NULL) { free(s); free(scratch); close(fd); return throw_errno(env, "malloc", name, ENOMEM); }
  s->env = env;
  s->fd = fd;
  s->scratch = scratch;
  s->handle_closed = 1; /* no handle yet */
  memcpy(s->ifname, name, sizeof s->ifname);
  if (napi_wrap(env, self, s, finalize, NULL, NULL) != napi_ok) {
    close(fd); free(scratch); free(s);
    return throw_errno(env, "napi_wrap", name, EINVAL);
  }
  napi_create_reference(env, self, 0, &s->self);
  return self;
}

/* ---------- receive ---------- */

static void call_js(raw_socket *s, napi_value error, napi_value frames) {
  napi_env env = s->env;
  napi_value cb, recv, argv[2], result;
  if (s->callback == NULL || s->self == NULL) return;
  napi_get_reference_value(env, s->callback, &cb);
  napi_get_reference_value(env, s->self, &recv);
  if (cb == NULL || recv == NULL) return;
  napi_get_null(env, &argv[0]);
  if (error != NULL) argv[0] = error;
  if (frames == NULL) napi_create_array_with_length(env, 0, &frames);
  argv[1] = frames;
  if (napi_make_callback(env, s->async_context, recv, cb, 2, argv, &result) == napi_pending_exception) {
    /* A throwing handler must surface as 'uncaughtException', exactly like an EventEmitter's. */
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  raw_socket *s = (raw_socket *)handle->data;
  napi_env env = s->env;
  if (s->fd < 0) return;
  napi_handle_scope scope;
  if (status < 0) {
    /* POLLERR: libuv has stopped this handle. Read (and so clear) the pending socket error,
     * ENETDOWN when the link went down, report it, and poll again: the kernel re-attaches the
     * socket when the link comes back up. A POLLERR that keeps coming without frames in
     * between is given up on after POLLERR_STREAK_LIMIT wake-ups rather than spinning. */
    int e = 0;
    socklen_t elen = sizeof e;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &elen);
    napi_open_handle_scope(env, &scope);
    if (e != 0) call_js(s, make_errno_error(env, "recvfrom", s->ifname, e), NULL);
    if (s->fd >= 0 && ++s->pollerr_streak > POLLERR_STREAK_LIMIT) call_js(s, make_errno_error(env, "poll", s->ifname, EIO), NULL);
    napi_close_handle_scope(env, scope);
    if (s->fd < 0 || s->pollerr_streak > POLLERR_STREAK_LIMIT) return;
    uv_poll_start(&s->poll, UV_READABLE, on_readable);
  }
  int drained = 0;
  struct mmsghdr msgs[RX_MMSG_FRAMES];
  struct iovec iov[RX_MMSG_FRAMES];
  struct sockaddr_ll from[RX_MMSG_FRAMES];
  while (!drained && s->fd >= 0) {
    napi_open_handle_scope(env, &scope);
    napi_value frames;
    napi_create_array(env, &frames);
    uint32_t n = 0;
    int err = 0;
    while (n < RX_BATCH_FRAMES && !drained) {
      unsigned want = RX_BATCH_FRAMES - n < RX_MMSG_FRAMES ? RX_BATCH_FRAMES - n : RX_MMSG_FRAMES;
      for (unsigned i = 0; i < want; i++) {
        iov[i].iov_base = s->scratch + (size_t)i * RX_SCRATCH_BYTES;
        iov[i].iov_len = RX_SCRATCH_BYTES;
        memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof from[i];
      }
      /* MSG_TRUNC: msg_len is the frame's real length, so an oversized one is counted, not cut. */
      int r = recvmmsg(s->fd, msgs, want, MSG_DONTWAIT | MSG_TRUNC, NULL);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) drained = 1;
        else err = errno;
        break;
      }
      /* Fewer than asked: the queue is empty for now (the poll is level-triggered, so a frame
         arriving meanwhile wakes us again). Saves the extra call that would return EAGAIN. */
      if ((unsigned)r < want) drained = 1;
      for (int i = 0; i < r; i++) {
        if (from[i].sll_pkttype == PACKET_OUTGOING) continue;
        if (msgs[i].msg_len > RX_SCRATCH_BYTES) { s->truncated++; continue; }
        napi_value buf;
        napi_create_buffer_copy(env, msgs[i].msg_len, iov[i].iov_base, NULL, &buf);
        napi_set_element(env, frames, n++, buf);
        s->received++;
        s->pollerr_streak = 0;
      }
    }
    if (n > 0) call_js(s, NULL, frames);
    /* A receive error (ENETDOWN when the link goes down...) is reported and cleared; the socket
     * keeps working when the link comes back. */
    if (err != 0 && s->fd >= 0) call_js(s, make_errno_error(env, "recvmmsg", s->ifname, err), NULL);
    napi_close_handle_scope(env, scope);
    if (err != 0) break;
  }
}

/* ---------- start / send / statistics / close ---------- */

static napi_value start(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  raw_socket *s = unwrap(env, info, &argc, argv);
  if (s == NULL) return NULL;
  napi_valuetype t;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function) return throw_type(env, "start(callback): callback must be a function");
  if (s->fd < 0) return throw_errno(env, "start", s->ifname, EBADF);
  if (s->poll_started) return throw_errno(env, "start", s->ifname, EALREADY);
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  int r = uv_poll_init_socket(loop, &s->poll, s->fd);
  if (r < 0) return throw_errno(env, "uv_poll_init", s->ifname, -r);
  s->poll.data = s;
  s->poll_started = 1;
  s->handle_closed = 0;
  napi_value resource_name;
  napi_create_string_utf8(env, "diskless:RawSocket", NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, NULL, resource_name, &s->async_context);
  napi_create_reference(env, argv[0], 1, &s->callback);
  uint32_t rc;
  napi_reference_ref(env, s->self, &rc);
  napi_add_async_cleanup_hook(env, on_env_teardown, s, &s->cleanup_hook);
  r = uv_poll_start(&s->poll, UV_READABLE, on_readable);
  if (r < 0) { close_socket(s, 0); return throw_errno(env, "uv_poll_start", s->ifname, -r); }
  return NULL;
}

/* ---------- send / statistics / close ---------- */

static napi_value send_frame(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  raw_socket *s = unwrap(env, info, &argc, argv);
  if (s == NULL) return NULL;
  bool is_ta = false;
  if (argc >= 1) napi_is_typedarray(env, argv[0], &is_ta);
  if (!is_ta) return throw_type(env, "send(frame): frame must be a Buffer");
  napi_typedarray_type type;
  size_t length;
  void *data;
  napi_value ab;
  size_t offset;
  napi_get_typedarray_info(env, argv[0], &type, &length, &data, &ab, &offset);
  if (type != napi_uint8_array) return throw_type(env, "send(frame): frame must be a Buffer");
  if (s->fd < 0) return throw_errno(env, "send", s->ifname, EBADF);
  for (int attempt = 0;; attempt++) {
    ssize_t r = send(s->fd, data, length, MSG_DONTWAIT);
    if (r >= 0) return NULL;
    if (errno == EINTR) continue;
    if ((errno == EAGAIN || errno == EWOULDBLOCK) && attempt == 0) {
      /* The send queue is full: wait briefly for room once rather than drop the frame. */
      struct pollfd p = { .fd = s->fd, .events = POLLOUT };
      poll(&p, 1, TX_WAIT_MS);
      continue;
    }
    return throw_errno(env, "send", s->ifname, errno);
  }
}

/* Frames per sendmmsg call. */
#define TX_BATCH_FRAMES 64

/*
 * sendMany(frames): sends every Buffer of the array, in order, with sendmmsg (up to
 * TX_BATCH_FRAMES per call): one system call and one wake-up of a local receiver per batch
 * instead of one per frame. Waits like send() when the queue is full. On an error, throws it
 * with `sent` = the number of frames that went out first.
 */
static napi_value send_many(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  raw_socket *s = unwrap(env, info, &argc, argv);
  if (s == NULL) return NULL;
  bool is_array = false;
  if (argc >= 1) napi_is_array(env, argv[0], &is_array);
  if (!is_array) return throw_type(env, "sendMany(frames): frames must be an array of Buffers");
  uint32_t n = 0;
  napi_get_array_length(env, argv[0], &n);
  if (s->fd < 0) return throw_errno(env, "sendmmsg", s->ifname, EBADF);
  struct mmsghdr msgs[TX_BATCH_FRAMES];
  struct iovec iov[TX_BATCH_FRAMES];
  uint32_t done = 0;
  int stalled = 0;
  while (done < n) {
    uint32_t k = 0;
    for (; k < TX_BATCH_FRAMES && done + k < n; k++) {
      napi_value el;
      napi_get_element(env, argv[0], done + k, &el);
      bool is_ta = false;
      napi_is_typedarray(env, el, &is_ta);
      napi_typedarray_type type = napi_int8_array;
      size_t length = 0;
      void *data = NULL;
      if (is_ta) napi_get_typedarray_info(env, el, &type, &length, &data, NULL, NULL);
      if (!is_ta || type != napi_uint8_array) return throw_type(env, "sendMany(frames): every frame must be a Buffer");
      iov[k].iov_base = data;
      iov[k].iov_len = length;
      memset(&msgs[k], 0, sizeof msgs[k]);
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
    }
    int r = sendmmsg(s->fd, msgs, k, MSG_DONTWAIT);
    if (r > 0) {
      done += (uint32_t)r;
      stalled = 0;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !stalled) {
      struct pollfd p = { .fd = s->fd, .events = POLLOUT };
      poll(&p, 1, TX_WAIT_MS);
      stalled = 1;
      continue;
    }
    napi_value err = make_errno_error(env, "sendmmsg", s->ifname, r < 0 ? errno : EIO), sent;
    napi_create_uint32(env, done, &sent);
    napi_set_named_property(env, err, "sent", sent);
    napi_throw(env, err);
    return NULL;
  }
  return NULL;
}

static napi_value statistics(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  raw_socket *s = unwrap(env, info, &argc, NULL);
  if (s == NULL) return NULL;
  if (s->fd >= 0) {
    struct tpacket_stats st;
    socklen_t len = sizeof st;
    /* The kernel resets these counters on every read: accumulate. */
    if (getsockopt(s->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) s->kernel_drops += st.tp_drops;
  }
  napi_value out, v;
  napi_create_object(env, &out);
  napi_create_double(env, (double)s->received, &v);
  napi_set_named_property(env, out, "received", v);
  napi_create_double(env, (double)s->kernel_drops, &v);
  napi_set_named_property(env, out, "kernelDrops", v);
  napi_create_double(env, (double)s->truncated, &v);
  napi_set_named_property(env, out, "truncated", v);
  return out;
}

static napi_value close_js(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  raw_socket *s = unwrap(env, info, &argc, NULL);
  if (s == NULL) return NULL;
  close_socket(s, 0);
  return NULL;
}

/* ---------- module ---------- */

/* The UdpTransfer class (udp_transfer.c), part of the same addon. */
napi_value udp_transfer_init(napi_env env, napi_value exports);
/* setTcpQuickAck (tcp_options.c). */
napi_value tcp_options_init(napi_env env, napi_value exports);
/* crc32cUpdate (crc32c.c), when the CPU has SSE4.2. */
napi_value crc32c_init(napi_env env, napi_value exports);
/* preadNoWait (block_io.c). */
napi_value block_io_init(napi_env env, napi_value exports);
/* readBlocksNoWait (verified_read.c), when the CPU has SSE4.2. */
napi_value verified_read_init(napi_env env, napi_value exports);

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
    { "start", NULL, start, NULL, NULL, NULL, napi_default, NULL },
    { "send", NULL, send_frame, NULL, NULL, NULL, napi_default, NULL },
    { "sendMany", NULL, send_many, NULL, NULL, NULL, napi_default, NULL },
    { "statistics", NULL, statistics, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, close_js, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_value cls, fn;
  napi_define_class(env, "RawSocket", NAPI_AUTO_LENGTH, construct, NULL, sizeof methods / sizeof methods[0], methods, &cls);
  napi_set_named_property(env, exports, "RawSocket", cls);
  napi_create_function(env, "interfaceInfo", NAPI_AUTO_LENGTH, interface_info, NULL, &fn);
  napi_set_named_property(env, exports, "interfaceInfo", fn);
  tcp_options_init(env, exports);
  crc32c_init(env, exports);
  block_io_init(env, exports);
  verified_read_init(env, exports);
  { napi_value block_alloc_init(napi_env, napi_value); block_alloc_init(env, exports); } /* punchHole, punchHoleSync, preallocate, seekData, seekHole (block_alloc.c) */
  { napi_value direct_io_init(napi_env, napi_value); direct_io_init(env, exports); } /* directIoAlignment, alignedBuffer (direct_io.c) */
  return udp_transfer_init(env, exports);
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
