import { DisklessError } from '../errors/index.js';

/**
 * Pure renderer of the iPXE scripts the HTTP boot server hands out at /boot/<mac>.ipxe. No
 * I/O: the control layer decides *which* script a machine gets (BootControl), this file only
 * writes it, and refuses (IPXE_UNSAFE_VALUE) any value it cannot place safely.
 *
 * Why the checks: iPXE splits each script line on whitespace with no quoting at all, expands
 * `${name}` anywhere in a token, treats a token starting with `#` as a comment and the tokens
 * `||`, `&&`, `;` as command separators, and reads a leading `-` as an option (src/core/exec.c).
 * So every interpolated value must be one token from a small alphabet; a setting value that is
 * not (a CHAP secret with spaces or `$`) is written with the `:hex` type override instead
 * (`set password:hex 73:33:63:...`), which stores the same bytes and cannot be misparsed.
 */

/** The iSCSI target a node boots from. iPXE URI syntax: iscsi:<server>:<protocol>:<port>:<lun>:<targetname>. */
export interface IscsiTarget {
  /** IPv4 address or host name the initiator connects to. */
  readonly server: string;
  /** TCP port; 3260 (the IANA iSCSI port) is left out of the URI. */
  readonly port: number;
  /** Logical unit number; our target serves each volume on LUN 0. */
  readonly lun: number;
  /** Target IQN, `<iscsi.iqnPrefix>:<volume>`. */
  readonly iqn: string;
}

/** One-way CHAP credentials (RFC 7143 §12.1.3) the initiator presents; iPXE settings `username`/`password`. */
export interface ChapCredentials {
  readonly username: string;
  readonly secret: string;
}

/** The AoE target a node boots from: iPXE URI `aoe:e<shelf>.<slot>` (found by broadcast on the boot interface). */
export interface AoeTarget {
  readonly shelf: number;
  readonly slot: number;
}

/** `boot: sanboot`: boot the node's volume over iSCSI, or over AoE when `aoe` is given (then `target` and `chap` are unused: AoE has no login). */
export interface SanbootScript {
  readonly kind: 'sanboot';
  readonly node: string;
  readonly volume: string;
  /** iPXE setting `initiator-iqn`. */
  readonly initiatorIqn: string;
  readonly target: IscsiTarget;
  readonly chap?: ChapCredentials;
  readonly aoe?: AoeTarget;
}

/** `boot: script`: the operator's own iPXE script, served as written (plus `#!ipxe` when missing). */
export interface CustomScript {
  readonly kind: 'script';
  readonly node: string;
  readonly body: string;
}

/** `boot: exit`, or an unknown machine under `defaults.unknownNode: exit`: leave iPXE, the firmware tries its next boot device. */
export interface ExitScript {
  readonly kind: 'exit';
  readonly mac: string;
  /** The node name; undefined for a machine the inventory does not know. */
  readonly node?: string;
}

/** `defaults.unknownNode: menu`: local disk / ask again / shell. */
export interface MenuScript {
  readonly kind: 'menu';
  readonly mac: string;
  /** This machine's script URL, fetched again by "ask the boot server again". */
  readonly retryUrl: string;
  /** After this long without a key press the menu picks "boot from the local disk". */
  readonly timeoutSeconds: number;
}

/** `defaults.unknownNode: discovery`: tell the user the machine was registered, then ask again every `retrySeconds`. */
export interface DiscoveryScript {
  readonly kind: 'discovery';
  readonly mac: string;
  readonly retryUrl: string;
  readonly retrySeconds: number;
}

export type BootScript = SanbootScript | CustomScript | ExitScript | MenuScript | DiscoveryScript;

/** The IANA-assigned iSCSI port (RFC 7143 §13.4 / "iscsi-target"), implied by an empty URI port field. */
export const ISCSI_DEFAULT_PORT = 3260;

/** Renders `script` as iPXE script text (LF line ends, trailing newline). Throws IPXE_UNSAFE_VALUE. */
export function renderIpxeScript(script: BootScript): string {
  const lines = linesFor(script);
  return lines.join('\n') + '\n';
}

function linesFor(script: BootScript): string[] {
  switch (script.kind) {
    case 'sanboot':
      return sanbootLines(script);
    case 'script':
      return customLines(script);
    case 'exit':
      return exitLines(script);
    case 'menu':
      return menuLines(script);
    case 'discovery':
      return discoveryLines(script);
  }
}

function sanbootLines(s: SanbootScript): string[] {
  if (s.aoe) return aoeSanbootLines(s, s.aoe);
  const node = name(s.node, 'node');
  const volume = name(s.volume, 'volume');
  const uri = iscsiUri(s.target);
  const lines = [
    '#!ipxe',
    `# diskless: node ${node} boots volume ${volume} over iSCSI`,
    `echo diskless: node ${node} booting volume ${volume} from ${uri}`,
    ipxeSet('initiator-iqn', iqn(s.initiatorIqn, 'initiatorIqn')),
  ];
  if (s.chap) lines.push(ipxeSet('username', s.chap.username), ipxeSet('password', s.chap.secret));
  // No --keep: if the boot returns, the drive is unhooked and the firmware moves on cleanly.
  lines.push(
    `sanboot ${uri} || goto failed`,
    'exit',
    ':failed',
    `echo diskless: sanboot failed for node ${node} (volume ${volume}); booting the next device`,
    'exit 1',
  );
  return lines;
}

function aoeSanbootLines(s: SanbootScript, target: AoeTarget): string[] {
  const node = name(s.node, 'node');
  const volume = name(s.volume, 'volume');
  if (!Number.isInteger(target.shelf) || target.shelf < 0 || target.shelf > 65534) throw unsafe('aoe.shelf', String(target.shelf), 'an integer 0-65534');
  if (!Number.isInteger(target.slot) || target.slot < 0 || target.slot > 254) throw unsafe('aoe.slot', String(target.slot), 'an integer 0-254');
  const uri = `aoe:e${target.shelf}.${target.slot}`;
  return [
    '#!ipxe',
    `# diskless: node ${node} boots volume ${volume} over AoE`,
    `echo diskless: node ${node} booting volume ${volume} from ${uri}`,
    `sanboot ${uri} || goto failed`,
    'exit',
    ':failed',
    `echo diskless: sanboot failed for node ${node} (volume ${volume}); booting the next device`,
    'exit 1',
  ];
}

function customLines(s: CustomScript): string[] {
  name(s.node, 'node');
  const body = s.body.replace(/\r\n?/g, '\n').replace(/\n+$/, '');
  if (body.trim() === '') throw unsafe('script', s.body, 'a non-empty iPXE script');
  if (body.includes('\0')) throw unsafe('script', s.body, 'an iPXE script without NUL bytes');
  // iPXE recognises a script only by its first line (#!ipxe, or the older #!gpxe).
  return /^#!(ipxe|gpxe)\b/.test(body) ? [body] : ['#!ipxe', body];
}

function exitLines(s: ExitScript): string[] {
  const mac = macText(s.mac);
  const why = s.node === undefined ? `${mac} is not in the inventory` : `node ${name(s.node, 'node')} is set to boot: exit`;
  return ['#!ipxe', `echo diskless: ${why}; booting the next device`, 'exit'];
}

function menuLines(s: MenuScript): string[] {
  const mac = macText(s.mac);
  const url = httpUrl(s.retryUrl);
  const timeoutMs = seconds(s.timeoutSeconds, 'timeoutSeconds') * 1000;
  return [
    '#!ipxe',
    `# diskless: menu for ${mac}, a machine the inventory does not know`,
    ':start',
    `menu diskless: ${mac} is not in the inventory`,
    'item local Boot from the local disk',
    'item retry Ask the boot server again',
    'item shell Open the iPXE shell',
    `choose --default local --timeout ${timeoutMs} target || goto local`,
    'goto ${target}',
    ':local',
    'echo diskless: booting the next device',
    'exit',
    ':retry',
    `chain --replace --autofree ${url} || goto failed`,
    ':failed',
    'echo diskless: cannot fetch the boot script; back to the menu in 5 s',
    'sleep 5',
    'goto start',
    ':shell',
    'echo diskless: type exit to return to the menu',
    'shell',
    'goto start',
  ];
}

function discoveryLines(s: DiscoveryScript): string[] {
  const mac = macText(s.mac);
  const url = httpUrl(s.retryUrl);
  const delay = seconds(s.retrySeconds, 'retrySeconds');
  return [
    '#!ipxe',
    `# diskless: discovery for ${mac}`,
    `echo diskless: this machine (${mac}) is not in the inventory yet`,
    'echo diskless: it has been registered; once an operator adopts it, it boots on the next try',
    ':retry',
    `echo diskless: asking the boot server again in ${delay} s`,
    `sleep ${delay}`,
    // --replace keeps the image list from growing by one script per retry.
    `chain --replace --autofree ${url} || goto retry`,
  ];
}

/** `iscsi:<server>:<protocol>:<port>:<lun>:<targetname>`; protocol empty (TCP), port empty when 3260. */
export function iscsiUri(target: IscsiTarget): string {
  const server = word(target.server, 'target.server', /^[A-Za-z0-9][A-Za-z0-9.-]*$/, 'an IPv4 address or host name');
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) throw unsafe('target.port', target.port, 'an integer from 1 to 65535');
  if (!Number.isInteger(target.lun) || target.lun < 0 || target.lun > 16383) throw unsafe('target.lun', target.lun, 'an integer from 0 to 16383');
  const port = target.port === ISCSI_DEFAULT_PORT ? '' : String(target.port);
  return `iscsi:${server}::${port}:${target.lun}:${iqn(target.iqn, 'target.iqn')}`;
}

/**
 * `set <setting> <value>`, or `set <setting>:hex <bytes>` when the value is not one safe token
 * (iPXE's `set` joins its arguments with single spaces, so spaces would be altered, and `$`
 * would be expanded). Control characters are refused: iPXE reads settings as C strings.
 */
export function ipxeSet(setting: string, value: string): string {
  word(setting, 'setting', /^[a-z][a-z0-9.-]*$/, 'an iPXE setting name');
  if (value === '' || /[\x00-\x1f\x7f]/.test(value)) {
    // Never echo a secret into an error message or a log line.
    throw unsafe(setting, /password/.test(setting) ? '(hidden)' : value, 'a non-empty value without control characters or newlines');
  }
  if (SAFE_TOKEN.test(value)) return `set ${setting} ${value}`;
  const hex = Array.from(Buffer.from(value, 'utf8'), (b) => b.toString(16).padStart(2, '0')).join(':');
  return `set ${setting}:hex ${hex}`;
}

/** One iPXE token that no expansion, comment, separator or option parsing can change. */
const SAFE_TOKEN = /^[A-Za-z0-9_.][A-Za-z0-9_.:@+=,/%~-]*$/;

function word(value: unknown, field: string, pattern: RegExp, allowed: string): string {
  if (typeof value !== 'string' || value.length > 1024 || !pattern.test(value)) throw unsafe(field, value, allowed);
  return value;
}

function name(value: string, field: string): string {
  return word(value, field, /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'a name of letters, digits, . _ - (up to 63)');
}

function iqn(value: string, field: string): string {
  // RFC 7143 §4.2.7.2 name types iqn./eui./naa.; iPXE takes the target name verbatim after the 5th colon.
  return word(value, field, /^(iqn\.\d{4}-\d{2}\.[A-Za-z0-9][A-Za-z0-9.-]*(:[A-Za-z0-9._:-]+)?|eui\.[0-9A-Fa-f]{16}|naa\.[0-9A-Fa-f]{16}([0-9A-Fa-f]{16})?)$/, 'an iSCSI name: iqn.YYYY-MM.reversed.domain[:unique], eui.<16 hex> or naa.<16 or 32 hex>');
}

function macText(value: string): string {
  return word(value, 'mac', /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, 'a lower-case colon MAC such as 52:54:00:12:34:56');
}

function httpUrl(value: string): string {
  return word(value, 'retryUrl', /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?(\/[A-Za-z0-9._~/%:@+=,-]*)?$/, 'an http:// URL of safe characters');
}

function seconds(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 1 || value > 86400) throw unsafe(field, value, 'a whole number of seconds from 1 to 86400');
  return value;
}

function unsafe(field: string, value: unknown, allowed: string): DisklessError {
  return new DisklessError('IPXE_UNSAFE_VALUE', `cannot put ${field} ${JSON.stringify(value)} into an iPXE script; allowed: ${allowed}`, { field, value, allowed });
}
