/*
 * TCP socket options Node does not expose, for sockets Node owns (passed in by descriptor).
 *
 * setTcpQuickAck(fd): sets TCP_QUICKACK once, so the kernel acknowledges what it has received
 * now instead of waiting up to 40 ms (delayed ACK) for data to piggyback on. Linux clears the
 * flag again by itself (it is not a permanent mode), so callers set it at the moment an
 * immediate ACK matters: iPXE keeps one unacknowledged segment in flight and sends an iSCSI
 * PDU's header and data as two segments, so without it every such PDU waits for our delayed
 * ACK. Throws an errno-named Error (code EBADF, ENOTSOCK, ...) on failure.
 */
#include <node_api.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

static napi_value set_tcp_quick_ack(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "setTcpQuickAck(fd): fd must be a non-negative integer");
    return NULL;
  }
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one) != 0) {
    int err = errno;
    napi_value code, msg, error;
    napi_create_string_utf8(env, err == EBADF ? "EBADF" : err == ENOTSOCK ? "ENOTSOCK" : err == ENOPROTOOPT ? "ENOPROTOOPT" : "EINVAL", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, code, msg, &error);
    napi_throw(env, error);
    return NULL;
  }
  return NULL;
}

napi_value tcp_options_init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "setTcpQuickAck", NAPI_AUTO_LENGTH, set_tcp_quick_ack, NULL, &fn);
  napi_set_named_property(env, exports, "setTcpQuickAck", fn);
  return exports;
}
