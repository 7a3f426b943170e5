/**
 * The contract of the native AF_PACKET addon (native/), as the rest of the code sees it.
 * DHCP and RA use it to receive and send whole Ethernet frames on exactly one interface;
 * AoE will too. Implemented by `openRawSocket` in ./open-raw-socket.ts.
 */
export interface RawSocketOptions {
  /** Interface to bind to, e.g. "br0". The socket sees frames of this interface only. */
  readonly ifname: string;
  /** EtherType to receive (0x0800 IPv4, 0x86dd IPv6, 0x88a2 AoE). */
  readonly etherType: number;
  /**
   * Optional classic BPF program run in the kernel before frames reach JS, as
   * [code, jt, jf, k] tuples (see `man 7 socket`, SO_ATTACH_FILTER).
   */
  readonly filter?: ReadonlyArray<readonly [number, number, number, number]>;
  /** SO_RCVBUF in bytes; bursts lose frames below ~1 MiB. */
  readonly receiveBufferBytes?: number;
  /**
   * SO_SNDBUF in bytes; kernel default when unset. A frame is charged to the sending socket
   * until the receiver consumes it, so a sender with many large frames in flight (an AoE
   * target answering a pipelining initiator) needs more than the default ~208 KiB, or `send`
   * waits for room.
   */
  readonly sendBufferBytes?: number;
}

export interface InterfaceInfo {
  readonly ifname: string;
  readonly ifindex: number;
  /** 6 bytes. */
  readonly mac: Buffer;
  readonly mtu: number;
}

export interface RawSocket extends InterfaceInfo {
  /**
   * Registers the receiver. Called once per frame, with a Buffer the callee may keep
   * (each frame gets its own memory). Frames arrive in kernel order.
   */
  onFrame(handler: (frame: Buffer) => void): void;
  /** Sends one whole Ethernet frame (header included, no FCS). Throws on EMSGSIZE etc. */
  send(frame: Buffer): void;
  /**
   * Optional: sends several frames in order with as few system calls as possible (sendmmsg).
   * Throws NET_SEND_FAILED with `data.sent`, the frames that went out before the error.
   */
  sendMany?(frames: readonly Buffer[]): void;
  /** Stops receiving and closes the descriptor; safe to call twice. */
  close(): void;
  /**
   * Optional: registers a receiver for receive errors (ENETDOWN while the link is down...).
   * Each is reported once and cleared; the socket keeps working when the link returns.
   * Without a handler they are only counted in `statistics().receiveErrors`.
   */
  onError?(handler: (err: Error) => void): void;
  /** Optional: counters since open, for the owning server's metrics. */
  statistics?(): RawSocketStatistics;
}

/** Counters of one raw socket since it was opened. */
export interface RawSocketStatistics {
  /** Frames delivered to JS. */
  readonly received: number;
  /** Frames the kernel dropped because the receive buffer was full (PACKET_STATISTICS). */
  readonly kernelDrops: number;
  /** Frames larger than the addon's 64 KiB receive buffer, dropped. */
  readonly truncated: number;
  /** recvfrom errors reported (and cleared) since open. */
  readonly receiveErrors: number;
}
