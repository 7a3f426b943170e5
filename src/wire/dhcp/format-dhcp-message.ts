import { macToString } from '../ethernet/ethernet-frame.js';
import { BootpOp, DhcpMessageType, DhcpOption, IpxeOption, PxeSuboption } from './dhcp-constants.js';
import type { DhcpMessage } from './dhcp-message.js';
import { decodeEncapsulated, type DhcpOptions } from './dhcp-options.js';
import { decodeUserClasses, formatUuid, optionText } from './pxe-options.js';

/**
 * A readable, stable, multi-line dump of a DHCP message: the golden files under testdata/
 * (`*.parsed`) and debug logs use it. Known options are shown decoded by name, unknown ones
 * as hex; encapsulated blocks (43, 175) are shown by sub-option. Pure.
 */

type Kind = 'ipv4' | 'ipv4s' | 'u8' | 'u16' | 'u32' | 'text' | 'codes' | 'msgtype' | 'arch' | 'ndi' | 'machineid' | 'userclass' | 'pxe' | 'ipxe' | 'hex';

const optionKinds = new Map<number, Kind>([
  [DhcpOption.subnetMask, 'ipv4'],
  [DhcpOption.router, 'ipv4s'],
  [DhcpOption.domainNameServer, 'ipv4s'],
  [DhcpOption.hostName, 'text'],
  [DhcpOption.domainName, 'text'],
  [DhcpOption.broadcastAddress, 'ipv4'],
  [DhcpOption.vendorSpecific, 'pxe'],
  [DhcpOption.requestedIpAddress, 'ipv4'],
  [DhcpOption.leaseTime, 'u32'],
  [DhcpOption.messageType, 'msgtype'],
  [DhcpOption.serverIdentifier, 'ipv4'],
  [DhcpOption.parameterRequestList, 'codes'],
  [DhcpOption.message, 'text'],
  [DhcpOption.maxMessageSize, 'u16'],
  [DhcpOption.renewalTime, 'u32'],
  [DhcpOption.rebindingTime, 'u32'],
  [DhcpOption.vendorClassIdentifier, 'text'],
  [DhcpOption.clientIdentifier, 'hex'],
  [DhcpOption.tftpServerName, 'text'],
  [DhcpOption.bootfileName, 'text'],
  [DhcpOption.userClass, 'userclass'],
  [DhcpOption.clientArch, 'arch'],
  [DhcpOption.clientNdi, 'ndi'],
  [DhcpOption.clientMachineId, 'machineid'],
  [DhcpOption.ipxeEncapsulated, 'ipxe'],
]);

function invert(table: Record<string, number>): Map<number, string> {
  return new Map(Object.entries(table).map(([k, v]) => [v, k]));
}
const optionNames = invert(DhcpOption);
const typeNames = invert(DhcpMessageType);
const pxeNames = invert(PxeSuboption);
const ipxeNames = invert(IpxeOption);

function ipv4s(data: Buffer): string {
  const out: string[] = [];
  for (let i = 0; i + 3 < data.length; i += 4) out.push(`${data[i]}.${data[i + 1]}.${data[i + 2]}.${data[i + 3]}`);
  return out.join(', ');
}

function encapsulated(data: Buffer, where: 'option 43' | 'option 175', names: Map<number, string>): string {
  let subs: DhcpOptions;
  try {
    subs = decodeEncapsulated(data, where);
  } catch {
    return `malformed ${data.toString('hex')}`;
  }
  return [...subs].map(([code, v]) => `${names.get(code) ?? code}(${code})=${v.toString('hex')}`).join(' ');
}

function formatValue(code: number, data: Buffer): string {
  const kind = optionKinds.get(code) ?? 'hex';
  const n = data.length;
  switch (kind) {
    case 'ipv4':
    case 'ipv4s':
      return n % 4 === 0 && n > 0 ? ipv4s(data) : `hex ${data.toString('hex')}`;
    case 'u8':
      return n === 1 ? String(data[0]) : `hex ${data.toString('hex')}`;
    case 'u16':
      return n === 2 ? String(data.readUInt16BE(0)) : `hex ${data.toString('hex')}`;
    case 'u32':
      return n === 4 ? String(data.readUInt32BE(0)) : `hex ${data.toString('hex')}`;
    case 'text':
      return JSON.stringify(optionText(data));
    case 'codes':
      return [...data].map((c) => String(c)).join(',');
    case 'msgtype':
      return n === 1 ? `${typeNames.get(data[0]!)?.toUpperCase() ?? 'unknown'}(${data[0]})` : `hex ${data.toString('hex')}`;
    case 'arch': {
      const a: number[] = [];
      for (let i = 0; i + 1 < n; i += 2) a.push(data.readUInt16BE(i));
      return a.join(',');
    }
    case 'ndi':
      return n === 3 ? `type ${data[0]} version ${data[1]}.${data[2]}` : `hex ${data.toString('hex')}`;
    case 'machineid':
      return n === 17 && data[0] === 0 ? `uuid ${formatUuid(data.subarray(1))}` : `hex ${data.toString('hex')}`;
    case 'userclass':
      return decodeUserClasses(data)
        .map((c) => JSON.stringify(c))
        .join(', ');
    case 'pxe':
      return encapsulated(data, 'option 43', pxeNames);
    case 'ipxe':
      return encapsulated(data, 'option 175', ipxeNames);
    default:
      return `hex ${data.toString('hex')}`;
  }
}

/** Multi-line dump of `message`, one field or option per line, no trailing newline. */
export function formatDhcpMessage(message: DhcpMessage): string {
  const lines = [
    `op ${message.op === BootpOp.request ? 'BOOTREQUEST' : message.op === BootpOp.reply ? 'BOOTREPLY' : message.op} htype ${message.htype} hlen ${message.chaddr.length} hops ${message.hops}`,
    `xid 0x${message.xid.toString(16).padStart(8, '0')} secs ${message.secs} flags 0x${message.flags.toString(16).padStart(4, '0')}`,
    `ciaddr ${message.ciaddr} yiaddr ${message.yiaddr} siaddr ${message.siaddr} giaddr ${message.giaddr}`,
    `chaddr ${message.chaddr.length === 6 ? macToString(message.chaddr) : message.chaddr.toString('hex')}`,
    `sname ${JSON.stringify(message.sname)}`,
    `file ${JSON.stringify(message.file)}`,
  ];
  if (message.overload !== undefined) lines.push(`overload ${message.overload}`);
  for (const [code, data] of message.options) {
    lines.push(`option ${code} ${optionNames.get(code) ?? 'unknown'} [${data.length}] ${formatValue(code, data)}`);
  }
  return lines.join('\n');
}
