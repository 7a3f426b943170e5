/**
 * A set of boot servers (DHCP, TFTP/HTTP, iSCSI) running inside a lab namespace that can boot
 * the demo disk to its marker: ours (`ServeStack`), or a peer (dnsmasq + tgt, `PeerBootStack`).
 * The boot benchmark and the e2e tests drive every stack through this one interface, so the
 * same VM meets each stack under the same conditions.
 */
export interface BootStack {
  /** Short label for tables: `diskless`, `dnsmasq+tgt (tuned)`. */
  readonly name: string;
  /**
   * Starts the servers in the lab namespace and resolves once they answer. The node with
   * `mac` (given at construction) must boot the demo disk. Throws if a server fails to start,
   * leaving nothing running.
   */
  start(): Promise<void>;
  /** Stops everything `start` started and removes what it added to the lab. Idempotent. */
  stop(): Promise<void>;
  /**
   * Makes the next boot a "first boot of a new node": every DHCP lease is forgotten (the
   * lease file removed, servers restarted if they must be). Called between runs, stack started.
   */
  forgetLeases(): Promise<void>;
}
