import { DisklessError } from '../../errors/index.js';
import { DhcpOption, IPXE_USER_CLASS, PXE_CLIENT_VENDOR_CLASS, PxeSuboption } from './dhcp-constants.js';
import { decodeEncapsulated, encodeOptionList, type DhcpOptions } from './dhcp-options.js';

/**
 * What a network-boot client says about itself in its DHCP request (RFC 4578 options 93, 94,
 * 97; option 60 "PXEClient..."; RFC 3004 user class; iPXE's option 175 block), and the
 * encapsulated blocks a server answers with (option 43 PXE sub-options, option 175 iPXE
 * settings). Pure.
 */
export interface PxeClientInfo {
  /** Option 93 (RFC 4578 §2.1): every architecture the client listed, first is preferred. */
  readonly architectures: readonly number[];
  /** Option 94 (RFC 4578 §2.2): UNDI interface type and version. */
  readonly ndi?: { readonly type: number; readonly major: number; readonly minor: number };
  /** Option 97 (RFC 4578 §2.3): the machine UUID/GUID as 8-4-4-4-12 hex, when type is 0. */
  readonly uuid?: string;
  /** Option 60, e.g. "PXEClient:Arch:00000:UNDI:002001". */
  readonly vendorClass?: string;
  /** True when option 60 starts with "PXEClient" (PXE 2.1 §2.2). */
  readonly isPxeClient: boolean;
  /** Option 77 (RFC 3004), each class as text; iPXE sends the bare string "iPXE". */
  readonly userClasses: readonly string[];
  /** True when option 175 is present or a user class is "iPXE". */
  readonly isIpxe: boolean;
  /** Option 175 sub-options when present (IpxeOption codes), e.g. feature markers, bus id. */
  readonly ipxe?: DhcpOptions;
}

/** Option 97 type 0 is a 16-byte UUID/GUID (RFC 4578 §2.3). */
const MACHINE_ID_TYPE_UUID = 0;
const UUID_LENGTH = 16;

/** Formats 16 bytes as 8-4-4-4-12 hex (byte order as sent on the wire). */
export function formatUuid(bytes: Buffer): string {
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * Option 77 as RFC 3004 instances (length-prefixed). Returns the whole value as one class when
 * it does not parse that way, as iPXE and many firmwares send a bare string.
 */
export function decodeUserClasses(data: Buffer): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < data.length) {
    const len = data[i]!;
    if (len === 0 || i + 1 + len > data.length) return [data.toString('utf8')];
    out.push(data.subarray(i + 1, i + 1 + len).toString('utf8'));
    i += 1 + len;
  }
  return out;
}

/** Option text with trailing NULs removed (some clients NUL-terminate strings). */
export function optionText(data: Buffer): string {
  let end = data.length;
  while (end > 0 && data[end - 1] === 0) end--;
  return data.subarray(0, end).toString('utf8');
}

/**
 * Reads the PXE/iPXE view of a request's options. Throws DHCP_BAD_OPTION_LENGTH for option 97
 * of type 0 that is not 17 bytes, DHCP_OPTION_OVERRUN for a malformed option 175 block.
 */
export function readPxeClientInfo(options: DhcpOptions): PxeClientInfo {
  const archData = options.get(DhcpOption.clientArch);
  const architectures: number[] = [];
  if (archData) for (let i = 0; i + 1 < archData.length; i += 2) architectures.push(archData.readUInt16BE(i));
  const ndiData = options.get(DhcpOption.clientNdi);
  const idData = options.get(DhcpOption.clientMachineId);
  let uuid: string | undefined;
  if (idData && idData[0] === MACHINE_ID_TYPE_UUID) {
    if (idData.length !== 1 + UUID_LENGTH) {
      throw new DisklessError('DHCP_BAD_OPTION_LENGTH', `cannot decode option 97: length is ${idData.length}, type 0 needs 17`, {
        option: DhcpOption.clientMachineId,
        length: idData.length,
        allowed: 1 + UUID_LENGTH,
      });
    }
    uuid = formatUuid(idData.subarray(1));
  }
  const vcData = options.get(DhcpOption.vendorClassIdentifier);
  const vendorClass = vcData ? optionText(vcData) : undefined;
  const ucData = options.get(DhcpOption.userClass);
  const userClasses = ucData ? decodeUserClasses(ucData) : [];
  const encap = options.get(DhcpOption.ipxeEncapsulated);
  const ipxe = encap ? decodeEncapsulated(encap, 'option 175') : undefined;
  return {
    architectures,
    ...(ndiData ? { ndi: { type: ndiData[0]!, major: ndiData[1]!, minor: ndiData[2]! } } : {}),
    ...(uuid === undefined ? {} : { uuid }),
    ...(vendorClass === undefined ? {} : { vendorClass }),
    isPxeClient: vendorClass?.startsWith(PXE_CLIENT_VENDOR_CLASS) ?? false,
    userClasses,
    isIpxe: ipxe !== undefined || userClasses.includes(IPXE_USER_CLASS),
    ...(ipxe ? { ipxe } : {}),
  };
}

/** PXE sub-options a server sends in option 43 (PXE 2.1 §2.4.2). */
export interface PxeVendorOptions {
  /** PxeDiscoveryControl bits. */
  readonly discoveryControl?: number;
  /** Sub-option 8: boot server types with their addresses. */
  readonly bootServers?: ReadonlyArray<{ readonly type: number; readonly addresses: readonly string[] }>;
  /** Sub-option 9: menu entries (boot server type + description). */
  readonly bootMenu?: ReadonlyArray<{ readonly type: number; readonly description: string }>;
  /** Sub-option 10: timeout in seconds (255: wait for a key; 0: pick the first item) and text. */
  readonly menuPrompt?: { readonly timeout: number; readonly prompt: string };
  /** Sub-option 71: boot server type and layer of the boot item (answers to port 4011 requests). */
  readonly bootItem?: { readonly type: number; readonly layer: number };
}

function ipv4Bytes(address: string): Buffer {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new DisklessError('DHCP_BAD_OPTION_VALUE', `cannot encode option 43: "${address}" is not an IPv4 address`, { option: DhcpOption.vendorSpecific, value: address });
  }
  return Buffer.from(parts);
}

function textBytes(text: string, what: string): Buffer {
  const b = Buffer.from(text, 'utf8');
  if (b.length > 255) throw new DisklessError('DHCP_BAD_OPTION_VALUE', `cannot encode option 43 ${what}: ${b.length} bytes, at most 255`, { option: DhcpOption.vendorSpecific, value: text });
  return b;
}

/** Encodes option 43 for a PXEClient (PXE 2.1 §2.4.2), closed by End as the spec asks. */
export function encodePxeVendorOptions(pxe: PxeVendorOptions): Buffer {
  const subs: Array<[number, Buffer]> = [];
  if (pxe.discoveryControl !== undefined) subs.push([PxeSuboption.discoveryControl, Buffer.from([pxe.discoveryControl & 0xff])]);
  if (pxe.bootServers) {
    const parts = pxe.bootServers.map((s) => Buffer.concat([u16(s.type), Buffer.from([s.addresses.length]), ...s.addresses.map(ipv4Bytes)]));
    subs.push([PxeSuboption.bootServers, Buffer.concat(parts)]);
  }
  if (pxe.bootMenu) {
    const parts = pxe.bootMenu.map((m) => {
      const d = textBytes(m.description, 'menu description');
      return Buffer.concat([u16(m.type), Buffer.from([d.length]), d]);
    });
    subs.push([PxeSuboption.bootMenu, Buffer.concat(parts)]);
  }
  if (pxe.menuPrompt) subs.push([PxeSuboption.menuPrompt, Buffer.concat([Buffer.from([pxe.menuPrompt.timeout & 0xff]), textBytes(pxe.menuPrompt.prompt, 'prompt')])]);
  if (pxe.bootItem) subs.push([PxeSuboption.bootItem, Buffer.concat([u16(pxe.bootItem.type), u16(pxe.bootItem.layer)])]);
  return encodeOptionList(subs, true);
}

/** Decodes option 43 of a PXEClient exchange into PXE sub-options (no interpretation). */
export function decodePxeVendorOptions(data: Buffer): DhcpOptions {
  return decodeEncapsulated(data, 'option 43');
}

/** Encodes an option 175 block (iPXE settings), e.g. [[IpxeOption.noPxeDhcp, Buffer.of(1)]]. */
export function encodeIpxeOptions(settings: Iterable<[number, Buffer]>): Buffer {
  return encodeOptionList(settings, false);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n & 0xffff);
  return b;
}
