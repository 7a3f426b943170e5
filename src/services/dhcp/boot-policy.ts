/**
 * What the DHCP server asks the control layer about each client ("who is this MAC, what
 * should it boot?"). Mechanism (packets, leases, timers) stays in services/dhcp; every
 * decision about *what* a machine boots lives behind this interface (implemented in
 * src/control). Called once per DISCOVER/REQUEST/INFORM and per port-4011 request.
 */
export interface BootClient {
  /** Client hardware address, lower-case colon form. */
  readonly mac: string;
  /** Option 93 client system architecture (RFC 4578 §2.1): 0 BIOS, 7/9 UEFI x64, 11 arm64... */
  readonly arch: number | undefined;
  /** True when the request comes from iPXE (option 175 present or user class "iPXE"). */
  readonly isIpxe: boolean;
  /** Option 60 vendor class identifier, e.g. "PXEClient:Arch:00000:UNDI:002001". */
  readonly vendorClass: string | undefined;
  /** Option 77 user class, e.g. "iPXE". */
  readonly userClass: string | undefined;
  /** Interface the request arrived on. */
  readonly ifname: string;
}

export interface BootDecision {
  /**
   * What goes in `file` / option 67: a TFTP path relative to the TFTP root for firmware PXE
   * (e.g. "undionly.kpxe"), or the full URL of the node's iPXE script for iPXE clients.
   */
  readonly bootFile: string;
  /** siaddr and option 66: the TFTP server. */
  readonly nextServer: string;
  /** A reserved address for this MAC (authoritative mode). Undefined: use the dynamic pool. */
  readonly address?: string;
  /** Option 12. */
  readonly hostname?: string;
}

export interface BootPolicy {
  /**
   * Decides what `client` boots. Resolves null for "not ours": the server stays silent (for
   * proxyDHCP that is the only polite answer; in authoritative mode the client still gets an
   * address only when the policy says so).
   */
  resolve(client: BootClient): Promise<BootDecision | null>;
}
