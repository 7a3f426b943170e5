import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDisklessError, type ErrorCode } from '../../errors/index.js';
import { decodeDhcpMessage, encodeDhcpMessage, type DhcpMessage } from './dhcp-message.js';
import {
  BOOTP_BROADCAST_FLAG,
  BOOTP_MIN_LENGTH,
  BootpField,
  BootpOp,
  DHCP_DEFAULT_MAX_MESSAGE,
  DHCP_MIN_LENGTH,
  DhcpMessageType,
  DhcpOption,
  HardwareType,
  IpxeOption,
  OptionOverload,
  PxeDiscoveryControl,
  PxeSuboption,
} from './dhcp-constants.js';
import { ipv4Value, textValue, uint8Value } from './option-values.js';
import { decodePxeVendorOptions, encodeIpxeOptions, encodePxeVendorOptions, readPxeClientInfo, decodeUserClasses } from './pxe-options.js';
import { decodeEncapsulated } from './dhcp-options.js';

function request(options: Array<[number, Buffer]>, extra: Partial<DhcpMessage> = {}): DhcpMessage {
  return {
    op: BootpOp.request,
    htype: HardwareType.ethernet,
    hops: 0,
    xid: 0x12345678,
    secs: 0,
    flags: 0,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr: Buffer.from('525400123456', 'hex'),
    sname: '',
    file: '',
    options: new Map(options),
    ...extra,
  };
}

const discover = () => request([[DhcpOption.messageType, uint8Value(DhcpMessageType.discover)]]);

function throwsCode(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (e: unknown) => isDisklessError(e, code), `expected ${code}`);
}

/** A message with a hand-written options field (after the cookie). */
function withRawOptions(options: number[]): Buffer {
  const base = encodeDhcpMessage(discover());
  return Buffer.concat([base.subarray(0, DHCP_MIN_LENGTH), Buffer.from(options)]);
}

test('encode pads to 300 bytes, sets hlen from chaddr and ends options with End', () => {
  const buf = encodeDhcpMessage(discover());
  assert.equal(buf.length, BOOTP_MIN_LENGTH);
  assert.equal(buf[2], 6);
  assert.deepEqual([...buf.subarray(DHCP_MIN_LENGTH, DHCP_MIN_LENGTH + 4)], [53, 1, 1, 255]);
  const back = decodeDhcpMessage(buf);
  assert.equal(back.xid, 0x12345678);
  assert.equal(back.chaddr.toString('hex'), '525400123456');
});

test('truncated messages are DHCP_TRUNCATED', () => {
  const buf = encodeDhcpMessage(discover());
  for (const n of [0, 1, 235, 236, 239]) throwsCode(() => decodeDhcpMessage(buf.subarray(0, n)), 'DHCP_TRUNCATED');
});

test('a wrong magic cookie is DHCP_BAD_COOKIE', () => {
  const buf = encodeDhcpMessage(discover());
  buf[236] = 0;
  throwsCode(() => decodeDhcpMessage(buf), 'DHCP_BAD_COOKIE');
});

test('bad op and hlen > 16 are DHCP_BAD_FIELD', () => {
  const a = encodeDhcpMessage(discover());
  a[0] = 3;
  throwsCode(() => decodeDhcpMessage(a), 'DHCP_BAD_FIELD');
  const b = encodeDhcpMessage(discover());
  b[2] = 17;
  throwsCode(() => decodeDhcpMessage(b), 'DHCP_BAD_FIELD');
});

test('an option running past the end of the field is DHCP_OPTION_OVERRUN', () => {
  throwsCode(() => decodeDhcpMessage(withRawOptions([53, 1, 1, 12, 10, 65, 66])), 'DHCP_OPTION_OVERRUN');
  throwsCode(() => decodeDhcpMessage(withRawOptions([53, 1, 1, 12])), 'DHCP_OPTION_OVERRUN'); // no length byte
});

test('an overlong option chain (lengths summing past the packet) is DHCP_OPTION_OVERRUN', () => {
  const chain: number[] = [53, 1, 1];
  for (let i = 0; i < 20; i++) chain.push(12, 255, ...new Array<number>(10).fill(65));
  throwsCode(() => decodeDhcpMessage(withRawOptions(chain)), 'DHCP_OPTION_OVERRUN');
});

test('a missing End option is DHCP_MISSING_END', () => {
  throwsCode(() => decodeDhcpMessage(withRawOptions([53, 1, 1])), 'DHCP_MISSING_END');
  throwsCode(() => decodeDhcpMessage(withRawOptions([53, 1, 1, 0, 0, 0])), 'DHCP_MISSING_END');
});

test('bad option lengths are DHCP_BAD_OPTION_LENGTH', () => {
  for (const bad of [
    [53, 2, 1, 1],
    [54, 3, 1, 2, 3],
    [93, 1, 0],
    [93, 3, 0, 0, 7],
    [94, 2, 1, 2],
    [50, 5, 1, 2, 3, 4, 5],
    [3, 6, 1, 2, 3, 4, 5, 6],
    [61, 1, 1],
  ]) {
    throwsCode(() => decodeDhcpMessage(withRawOptions([...bad, 255])), 'DHCP_BAD_OPTION_LENGTH');
  }
  // option 97 of type 0 must hold a whole UUID
  const m = decodeDhcpMessage(withRawOptions([97, 3, 0, 1, 2, 255]));
  throwsCode(() => readPxeClientInfo(m.options), 'DHCP_BAD_OPTION_LENGTH');
});

test('option 57 below 576 is DHCP_BAD_OPTION_VALUE; option 52 outside 1-3 too', () => {
  throwsCode(() => decodeDhcpMessage(withRawOptions([57, 2, 1, 0, 255])), 'DHCP_BAD_OPTION_VALUE');
  throwsCode(() => decodeDhcpMessage(withRawOptions([52, 1, 4, 255])), 'DHCP_BAD_OPTION_VALUE');
});

test('long options are split into 255-byte instances and concatenated back (RFC 3396)', () => {
  const long = Buffer.alloc(700, 0x41);
  const buf = encodeDhcpMessage(request([[DhcpOption.messageType, uint8Value(1)], [DhcpOption.hostName, long]]));
  let count = 0;
  for (let i = DHCP_MIN_LENGTH; buf[i] !== DhcpOption.end; i += 2 + buf[i + 1]!) if (buf[i] === DhcpOption.hostName) count++;
  assert.equal(count, 3);
  assert.deepEqual(decodeDhcpMessage(buf).options.get(DhcpOption.hostName), long);
});

test('instances of one option spread over options, file and sname concatenate in that order (RFC 3396 §7)', () => {
  const buf = encodeDhcpMessage(discover());
  const opts = Buffer.from([52, 1, OptionOverload.both, 53, 1, 1, 12, 2, 0x61, 0x62, 255]);
  opts.copy(buf, DHCP_MIN_LENGTH);
  Buffer.from([12, 2, 0x63, 0x64, 255]).copy(buf, BootpField.fileOffset);
  Buffer.from([12, 1, 0x65, 255]).copy(buf, BootpField.snameOffset);
  const m = decodeDhcpMessage(buf);
  assert.equal(m.options.get(DhcpOption.hostName)?.toString(), 'abcde');
  assert.equal(m.overload, OptionOverload.both);
  assert.equal(m.file, '');
  assert.equal(m.sname, '');
});

test('an overloaded file field without End is DHCP_MISSING_END; option 52 inside it is DHCP_BAD_FIELD', () => {
  const a = encodeDhcpMessage(discover());
  Buffer.from([52, 1, 1, 53, 1, 1, 255]).copy(a, DHCP_MIN_LENGTH);
  a.fill(0, BootpField.fileOffset, BootpField.fileOffset + BootpField.fileLength);
  Buffer.from([12, 1, 0x61]).copy(a, BootpField.fileOffset);
  throwsCode(() => decodeDhcpMessage(a), 'DHCP_MISSING_END');
  Buffer.from([52, 1, 1, 255]).copy(a, BootpField.fileOffset);
  throwsCode(() => decodeDhcpMessage(a), 'DHCP_BAD_FIELD');
});

test('with a size limit the encoder overloads file (and sname) and stays within it', () => {
  const big: Array<[number, Buffer]> = [[DhcpOption.messageType, uint8Value(DhcpMessageType.offer)]];
  for (let code = 200; code < 210; code++) big.push([code, Buffer.alloc(40, code)]);
  const m = request(big, { op: BootpOp.reply });
  const buf = encodeDhcpMessage(m, { maxLength: DHCP_DEFAULT_MAX_MESSAGE });
  assert.ok(buf.length <= DHCP_DEFAULT_MAX_MESSAGE, `length ${buf.length}`);
  const back = decodeDhcpMessage(buf);
  assert.ok(back.overload !== undefined);
  assert.deepEqual(back.options, new Map(big));
  // file in use: only sname may take options, and too much is DHCP_MESSAGE_TOO_LONG
  const withFile = { ...m, file: 'undionly.kpxe' };
  throwsCode(() => encodeDhcpMessage(withFile, { maxLength: DHCP_DEFAULT_MAX_MESSAGE }), 'DHCP_MESSAGE_TOO_LONG');
  const fits = encodeDhcpMessage({ ...withFile, options: new Map(big.slice(0, 9)) }, { maxLength: DHCP_DEFAULT_MAX_MESSAGE });
  const fitsBack = decodeDhcpMessage(fits);
  assert.equal(fitsBack.file, 'undionly.kpxe');
  assert.equal(fitsBack.overload, OptionOverload.sname);
  assert.deepEqual(fitsBack.options, new Map(big.slice(0, 9)));
});

test('encoder refuses structural option codes and oversize fields', () => {
  throwsCode(() => encodeDhcpMessage(request([[DhcpOption.overload, uint8Value(1)]])), 'DHCP_BAD_OPTION_VALUE');
  throwsCode(() => encodeDhcpMessage(request([[DhcpOption.end, Buffer.alloc(0)]])), 'DHCP_BAD_OPTION_VALUE');
  throwsCode(() => encodeDhcpMessage(request([[DhcpOption.pad, Buffer.alloc(1)]])), 'DHCP_BAD_OPTION_VALUE');
  throwsCode(() => encodeDhcpMessage({ ...discover(), file: 'x'.repeat(129) }), 'DHCP_BAD_FIELD');
  throwsCode(() => encodeDhcpMessage({ ...discover(), chaddr: Buffer.alloc(17) }), 'DHCP_BAD_FIELD');
  throwsCode(() => encodeDhcpMessage({ ...discover(), yiaddr: '10.0.0.256' }), 'WIRE_BAD_FIELD');
});

test('a reply with boot file, server id and the broadcast flag round-trips', () => {
  const m = request(
    [
      [DhcpOption.messageType, uint8Value(DhcpMessageType.ack)],
      [DhcpOption.serverIdentifier, ipv4Value('10.77.0.1')],
      [DhcpOption.bootfileName, textValue('http://10.77.0.1:8080/boot/52-54-00-12-34-56.ipxe')],
    ],
    { op: BootpOp.reply, flags: BOOTP_BROADCAST_FLAG, yiaddr: '10.77.0.100', siaddr: '10.77.0.1', file: 'undionly.kpxe', sname: 'boot' },
  );
  const back = decodeDhcpMessage(encodeDhcpMessage(m));
  assert.deepEqual({ ...back, options: new Map(back.options) }, m);
});

test('PXE option 43 and iPXE option 175 blocks encode and decode', () => {
  const v43 = encodePxeVendorOptions({
    discoveryControl: PxeDiscoveryControl.useBootFile,
    bootServers: [{ type: 0x8000, addresses: ['10.77.0.1'] }],
    bootMenu: [{ type: 0x8000, description: 'diskless' }],
    menuPrompt: { timeout: 0, prompt: 'PXE' },
  });
  assert.equal(v43[v43.length - 1], PxeSuboption.end);
  const subs = decodePxeVendorOptions(v43);
  assert.deepEqual([...subs.get(PxeSuboption.discoveryControl)!], [8]);
  assert.deepEqual([...subs.get(PxeSuboption.bootServers)!], [0x80, 0, 1, 10, 77, 0, 1]);
  assert.equal(subs.get(PxeSuboption.bootMenu)!.subarray(3).toString(), 'diskless');
  assert.deepEqual([...subs.get(PxeSuboption.menuPrompt)!], [0, 0x50, 0x58, 0x45]);
  const v175 = encodeIpxeOptions([[IpxeOption.noPxeDhcp, uint8Value(1)]]);
  assert.deepEqual([...v175], [176, 1, 1]);
  assert.deepEqual([...decodeEncapsulated(v175, 'option 175').get(IpxeOption.noPxeDhcp)!], [1]);
  throwsCode(() => decodeEncapsulated(Buffer.from([176, 5, 1]), 'option 175'), 'DHCP_OPTION_OVERRUN');
});

test('user class: RFC 3004 instances or a bare string', () => {
  assert.deepEqual(decodeUserClasses(Buffer.from('iPXE')), ['iPXE']);
  assert.deepEqual(decodeUserClasses(Buffer.from([4, 0x69, 0x50, 0x58, 0x45, 2, 0x61, 0x62])), ['iPXE', 'ab']);
});
