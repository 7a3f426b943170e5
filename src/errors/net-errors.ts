import type { ErrorTable } from './error-spec.js';

/** Errors raised by src/net: the raw Ethernet addon (native/) and interface lookup. */
export const netErrors = {
  NET_ADDON_MISSING: { summary: 'the native raw-socket addon (native/build/Release/diskless_raw.node) is not built: run `make build`', retryable: false },
  NET_INTERFACE_NOT_FOUND: { summary: 'no network interface has this name in the current network namespace', retryable: false },
  NET_PERMISSION: { summary: 'opening a raw AF_PACKET socket needs root or CAP_NET_RAW', retryable: false },
  NET_UNSUPPORTED_LINK: { summary: 'the interface does not carry Ethernet frames (tun, ppp, ...)', retryable: false },
  NET_INVALID_OPTION: { summary: 'a raw-socket option (EtherType, BPF filter, receive buffer size) is out of range or rejected by the kernel', retryable: false },
  NET_RAW_SOCKET: { summary: 'a raw-socket system call (socket, bind, recvfrom) failed; data.errno names the cause', retryable: false },
  NET_SEND_BUSY: { summary: 'the interface queue was full and the frame was not sent (ENOBUFS, EAGAIN)', retryable: true },
  NET_SEND_FAILED: { summary: 'the kernel refused to send the frame (EMSGSIZE, ENETDOWN, ...)', retryable: false },
  NET_SOCKET_CLOSED: { summary: 'the raw socket was used after close()', retryable: false },
} as const satisfies ErrorTable;
