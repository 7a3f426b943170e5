/**
 * An immediate TCP acknowledgement on a Node socket (TCP_QUICKACK through the native addon).
 * Linux delays an ACK up to 40 ms hoping to piggyback it on data; a peer that keeps only one
 * unacknowledged segment in flight (iPXE) then stalls for that long whenever it sends a
 * message in two segments. Servers call `acknowledgeNow` when a read ends in the middle of a
 * message, the one moment the peer waits for our ACK before sending more.
 *
 * Node has no public way to reach a socket's descriptor: this reads the libuv handle's `fd`
 * (present on Unix TCP handles since Node 0.x). Without the addon, or without a descriptor,
 * it does nothing and returns false: the ACK is then merely delayed, never lost.
 */
import type { Socket } from 'node:net';
import { optionalNative } from './native-addon.js';

/**
 * Builds an `acknowledgeNow(socket)` for one server. Cheap: one setsockopt per call. Returns
 * true when the option was set.
 */
export function quickAcker(): (socket: Socket) => boolean {
  const set = optionalNative<(fd: number) => void>('setTcpQuickAck');
  return (socket: Socket): boolean => {
    if (!set) return false;
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) return false;
    try {
      set(fd);
      return true;
    } catch {
      return false; // the socket closed under us: nothing to acknowledge
    }
  };
}
