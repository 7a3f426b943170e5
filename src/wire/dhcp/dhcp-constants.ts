/**
 * Numbers of BOOTP/DHCP and its PXE/iPXE extensions, grouped per field and named after the
 * specs: RFC 951/1542 (BOOTP), RFC 2131 (DHCP), RFC 2132 (options), RFC 3004 (user class),
 * RFC 3396 (long options), RFC 4578 (PXE options), the PXE 2.1 specification (option 43
 * sub-options) and iPXE's include/ipxe/dhcp.h (option 175 encapsulated settings).
 */

/** UDP ports (RFC 2131 §4.1; PXE 2.1 §2.2 for the boot server / proxyDHCP port). */
export const DhcpPort = {
  server: 67,
  client: 68,
  pxe: 4011,
} as const;

/** The 4 bytes 99.130.83.99 that open the options field (RFC 2131 §3, RFC 1497). */
export const DHCP_MAGIC_COOKIE = 0x63825363;

/** Size of the fixed BOOTP header before the magic cookie (RFC 2131 §2, figure 1). */
export const BOOTP_FIXED_LENGTH = 236;
/** Fixed header + cookie: the smallest DHCP message. */
export const DHCP_MIN_LENGTH = BOOTP_FIXED_LENGTH + 4;
/** Relays may drop shorter BOOTP messages (RFC 1542 §2.1): replies are padded up to this. */
export const BOOTP_MIN_LENGTH = 300;
/**
 * The largest DHCP message every client must accept: 576-byte IP datagram minus IP and UDP
 * headers (RFC 2131 §2: "options field of at least length 312 octets").
 */
export const DHCP_DEFAULT_MAX_MESSAGE = 576 - 20 - 8;

/** Field sizes and offsets of the fixed header (RFC 2131 §2). */
export const BootpField = {
  chaddrLength: 16,
  snameOffset: 44,
  snameLength: 64,
  fileOffset: 108,
  fileLength: 128,
} as const;

/** `op` (RFC 2131 §2). */
export const BootpOp = {
  request: 1,
  reply: 2,
} as const;

/** `htype` (RFC 1700 ARP hardware types). */
export const HardwareType = {
  ethernet: 1,
} as const;

/** `flags`: the only defined bit (RFC 2131 §2, figure 2). */
export const BOOTP_BROADCAST_FLAG = 0x8000;

/** Option 53 values (RFC 2132 §9.6). */
export const DhcpMessageType = {
  discover: 1,
  offer: 2,
  request: 3,
  decline: 4,
  ack: 5,
  nak: 6,
  release: 7,
  inform: 8,
} as const;
export type DhcpMessageTypeValue = (typeof DhcpMessageType)[keyof typeof DhcpMessageType];

/** Option codes (RFC 2132 unless noted). */
export const DhcpOption = {
  pad: 0,
  subnetMask: 1,
  router: 3,
  domainNameServer: 6,
  hostName: 12,
  domainName: 15,
  broadcastAddress: 28,
  vendorSpecific: 43,
  requestedIpAddress: 50,
  leaseTime: 51,
  overload: 52,
  messageType: 53,
  serverIdentifier: 54,
  parameterRequestList: 55,
  message: 56,
  maxMessageSize: 57,
  renewalTime: 58,
  rebindingTime: 59,
  vendorClassIdentifier: 60,
  clientIdentifier: 61,
  tftpServerName: 66,
  bootfileName: 67,
  /** RFC 3004. */
  userClass: 77,
  /** RFC 4578 §2.1: client system architecture (list of 16-bit types). */
  clientArch: 93,
  /** RFC 4578 §2.2: client network interface identifier (type, major, minor). */
  clientNdi: 94,
  /** RFC 4578 §2.3: client machine identifier (type 0 + 16-byte UUID/GUID). */
  clientMachineId: 97,
  /** iPXE: encapsulated iPXE settings (include/ipxe/dhcp.h DHCP_EB_ENCAP). */
  ipxeEncapsulated: 175,
  end: 255,
} as const;

/** Option 52 values (RFC 2132 §9.3): which of `file`/`sname` carry more options. */
export const OptionOverload = {
  file: 1,
  sname: 2,
  both: 3,
} as const;

/** Option 93 values (RFC 4578 §2.1, IANA "Processor Architecture Types"). */
export const ClientArch = {
  x86Bios: 0,
  necPc98: 1,
  itaniumEfi: 2,
  decAlpha: 3,
  arcX86: 4,
  intelLeanClient: 5,
  x86Uefi: 6,
  x64Uefi: 7,
  efiXscale: 8,
  /** EFI BC: what most UEFI x64 firmware actually sends. */
  x64UefiBc: 9,
  arm32Uefi: 10,
  arm64Uefi: 11,
  x64UefiHttp: 16,
  arm64UefiHttp: 19,
} as const;

/** Option 43 sub-options when option 60 is "PXEClient" (PXE 2.1 specification, table 2-1). */
export const PxeSuboption = {
  mtftpIp: 1,
  mtftpClientPort: 2,
  mtftpServerPort: 3,
  mtftpTimeout: 4,
  mtftpDelay: 5,
  /** Bit field; see PxeDiscoveryControl. */
  discoveryControl: 6,
  discoveryMulticastAddress: 7,
  bootServers: 8,
  bootMenu: 9,
  menuPrompt: 10,
  multicastAddressAllocation: 11,
  credentialTypes: 12,
  bootItem: 71,
  end: 255,
} as const;

/** Bits of PXE sub-option 6 (PXE 2.1 §2.4.2). */
export const PxeDiscoveryControl = {
  disableBroadcast: 1 << 0,
  disableMulticast: 1 << 1,
  /** Only use/accept servers in PXE_BOOT_SERVERS. */
  onlyListedServers: 1 << 2,
  /** The boot file name is in the DHCP/proxy offer: download it, skip boot server discovery. */
  useBootFile: 1 << 3,
} as const;

/**
 * Option 175 encapsulated settings (iPXE include/ipxe/dhcp.h, "DHCP_EB_*"; documented at
 * ipxe.org/cfg). Codes 0x10-0x4f are feature markers the client sends (HTTP = 19...).
 */
export const IpxeOption = {
  priority: 1,
  keepSan: 8,
  skipSanBoot: 9,
  featurePxeExt: 16,
  featureIscsi: 17,
  featureAoe: 18,
  featureHttp: 19,
  featureHttps: 20,
  featureTftp: 21,
  featureFtp: 22,
  featureDns: 23,
  featureBzImage: 24,
  featureMultiboot: 25,
  featureSlam: 26,
  featureSrp: 27,
  featureNbi: 32,
  featurePxe: 33,
  featureElf: 34,
  featureComboot: 35,
  featureEfi: 36,
  featureFcoe: 37,
  featureVlan: 38,
  featureMenu: 39,
  featureSdi: 40,
  featureNfs: 41,
  scriptlet: 81,
  syslogsServer: 85,
  /** Non-zero: do not wait for ProxyDHCP offers, ignore PXE options (LAB.md §2: saves ~2 s). */
  noPxeDhcp: 176,
  /** Bus type (1 = PCI) + vendor + device id. */
  busId: 177,
  sanRetry: 187,
  sanFilename: 188,
  biosDrive: 189,
  username: 190,
  password: 191,
  reverseUsername: 192,
  reversePassword: 193,
  version: 235,
} as const;

/** The option 60 prefix of PXE firmware (PXE 2.1 §2.2) and the option 77 value of iPXE. */
export const PXE_CLIENT_VENDOR_CLASS = 'PXEClient';
export const IPXE_USER_CLASS = 'iPXE';
