import { Type, type Static, type TSchema } from '@sinclair/typebox';

/**
 * The configuration file's schema (YAML on disk, validated by `loadConfig`). Every key has a
 * default so an empty file is a working single-segment setup; docs in README.md
 * ("Configuration reference") mirror the descriptions here.
 */

const ipv4Pattern = '^((25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)$';
const Ipv4 = (description: string, def?: string) =>
  Type.String({ pattern: ipv4Pattern, description, ...(def === undefined ? {} : { default: def }), examples: ['10.77.0.1'] });
const Cidr4 = (description: string, def: string) =>
  Type.String({ pattern: ipv4Pattern.slice(0, -1) + '/(3[0-2]|[12]?\\d)$', description, default: def, examples: ['10.77.0.0/24'] });
const Mac = Type.String({ pattern: '^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$', description: 'MAC address', examples: ['52:54:00:12:34:56'] });
const Port = (def: number) => Type.Integer({ minimum: 1, maximum: 65535, default: def });
const Name = Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$', description: 'name: letters, digits, . _ -' });
const Size = Type.Union([Type.Integer({ minimum: 512 }), Type.String({ pattern: '^\\d+(\\.\\d+)?\\s*([KMGT]i?B?|B)?$' })], {
  description: 'a byte count or a size like 64MiB, 10G',
});
const Iface = Type.String({ pattern: '^[^\\s/]{1,15}$', description: 'network interface name' });

function obj<T extends Record<string, TSchema>>(props: T, description: string) {
  return Type.Object(props, { additionalProperties: false, default: {}, description });
}

export const LogSchema = obj(
  { level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }) },
  'structured JSON logs on stderr',
);

export const ServerSchema = obj(
  {
    address: Ipv4('IPv4 address of this server on the boot segment: next-server, and the host in HTTP and iSCSI URLs', '10.77.0.1'),
    dataDir: Type.String({ default: '/var/lib/diskless', description: 'leases, volumes and the TFTP root live here' }),
  },
  'this server',
);

export const DhcpSchema = obj(
  {
    mode: Type.Union([Type.Literal('authoritative'), Type.Literal('proxy'), Type.Literal('off')], {
      default: 'authoritative',
      description: 'authoritative: hand out addresses; proxy: boot options only, beside another DHCP server (PXE proxyDHCP); off',
    }),
    interfaces: Type.Array(Iface, { default: ['br0'], minItems: 1, description: 'answer on these interfaces only' }),
    subnet: Cidr4('the boot segment', '10.77.0.0/24'),
    pool: obj(
      {
        start: Ipv4('first dynamic address', '10.77.0.100'),
        end: Ipv4('last dynamic address', '10.77.0.199'),
      },
      'dynamic pool (authoritative mode)',
    ),
    router: Type.Optional(Ipv4('default gateway handed to clients (option 3)')),
    dns: Type.Array(Ipv4('DNS server'), { default: [], description: 'DNS servers (option 6)' }),
    domain: Type.Optional(Type.String({ description: 'domain name (option 15)' })),
    leaseTime: Type.Integer({ minimum: 60, maximum: 31536000, default: 3600, description: 'lease time in seconds' }),
    pingCheck: Type.Boolean({ default: false, description: 'reserved: probe a new address before offering it (costs ~2 s per new client)' }),
  },
  'DHCPv4 server',
);

export const BootFilesSchema = obj(
  {
    ipxeDir: Type.String({ default: '/usr/lib/ipxe', description: "where Debian's ipxe package puts its binaries" }),
    bios: Type.String({ default: 'undionly.kpxe', description: 'boot file for BIOS PXE (arch 0)' }),
    uefi: Type.String({ default: 'ipxe.efi', description: 'boot file for UEFI x64 (arch 7, 9)' }),
    uefiSnp: Type.String({ default: 'snponly.efi', description: 'boot file for UEFI x64 when the client asks for SNP-only (option uefiPreferSnp)' }),
    uefiPreferSnp: Type.Boolean({ default: false, description: 'give snponly.efi instead of ipxe.efi to UEFI x64 clients' }),
    arm64: Type.Optional(Type.String({ description: 'boot file for UEFI arm64 (arch 11), relative to the TFTP root' })),
  },
  'which iPXE binary each firmware gets',
);

export const RaSchema = obj(
  {
    enabled: Type.Boolean({ default: true, description: 'send IPv6 router advertisements (router lifetime 0) so iPXE does not wait ~15 s for a router' }),
    interfaces: Type.Optional(Type.Array(Iface, { description: 'default: dhcp.interfaces' })),
    prefix: Type.Optional(Type.String({ description: 'an on-link IPv6 prefix to advertise, e.g. fd00:77::/64 (none by default)' })),
    intervalSeconds: Type.Integer({ minimum: 3, maximum: 1800, default: 200, description: 'unsolicited advertisement interval' }),
  },
  'IPv6 router advertisements',
);

export const TftpSchema = obj(
  {
    enabled: Type.Boolean({ default: true }),
    address: Type.String({ default: '0.0.0.0', description: 'listen address' }),
    port: Port(69),
    root: Type.Optional(Type.String({ description: 'served directory; default <dataDir>/tftp, filled with the iPXE boot files' })),
    maxBlockSize: Type.Integer({ minimum: 512, maximum: 65464, default: 1468, description: 'largest blksize granted (RFC 2348)' }),
    maxWindowSize: Type.Integer({ minimum: 1, maximum: 65535, default: 64, description: 'largest windowsize granted (RFC 7440)' }),
    timeoutMs: Type.Integer({ minimum: 100, maximum: 255000, default: 1000, description: 'first retransmission timeout; doubles on each retry' }),
    retries: Type.Integer({ minimum: 1, maximum: 20, default: 5 }),
  },
  'TFTP server (read-only)',
);

export const HttpSchema = obj(
  {
    enabled: Type.Boolean({ default: true }),
    address: Type.String({ default: '0.0.0.0', description: 'listen address' }),
    port: Port(8080),
    root: Type.Optional(Type.String({ description: 'static files (kernels, initrds); default <dataDir>/http' })),
  },
  'HTTP boot server: per-node iPXE scripts and static files',
);

export const IscsiSchema = obj(
  {
    enabled: Type.Boolean({ default: true }),
    address: Type.String({ default: '0.0.0.0', description: 'listen address' }),
    port: Port(3260),
    iqnPrefix: Type.String({ default: 'iqn.2026-11.io.diskless', description: 'target IQN = <iqnPrefix>:<volume>' }),
  },
  'iSCSI target',
);

export const AoeExportSchema = Type.Object(
  {
    volume: Name,
    shelf: Type.Integer({ minimum: 0, maximum: 65534, description: 'AoE shelf (major) address; iPXE boots it as aoe:e<shelf>.<slot>' }),
    slot: Type.Integer({ minimum: 0, maximum: 254, description: 'AoE slot (minor) address' }),
    interfaces: Type.Optional(Type.Array(Iface, { minItems: 1, description: 'default: aoe.interfaces' })),
    allow: Type.Optional(
      Type.Array(Mac, {
        maxItems: 184,
        description: 'the Mac Mask List: only these initiators are answered. Default: the MACs of the nodes that boot this volume ([] answers everyone)',
      }),
    ),
  },
  { additionalProperties: false },
);

export const AoeSchema = obj(
  {
    enabled: Type.Boolean({ default: false }),
    interfaces: Type.Optional(Type.Array(Iface, { minItems: 1, description: 'serve AoE on these interfaces only; default dhcp.interfaces' })),
    bufferCount: Type.Integer({ minimum: 1, maximum: 65535, default: 64, description: 'requests each target executes at once (advertised to initiators)' }),
    syncWrites: Type.Boolean({ default: false, description: 'every write durable before it is answered; default: durable at FLUSH CACHE, like a drive with its write cache on' }),
    exports: Type.Array(AoeExportSchema, { default: [], description: 'volumes served over AoE, one shelf.slot each' }),
  },
  'ATA over Ethernet target (raw Ethernet, no authentication: served only on the named interfaces, guarded by MAC mask lists)',
);

export const NodeSchema = Type.Object(
  {
    name: Name,
    mac: Mac,
    ip: Type.Optional(Ipv4('reserved address (authoritative mode)')),
    hostname: Type.Optional(Type.String()),
    boot: Type.Union([Type.Literal('sanboot'), Type.Literal('script'), Type.Literal('exit')], {
      default: 'sanboot',
      description: 'sanboot: boot the node volume over iSCSI; script: the given iPXE script; exit: boot the next device',
    }),
    volume: Type.Optional(Name),
    san: Type.Optional(Type.Union([Type.Literal('iscsi'), Type.Literal('aoe')], { description: 'how sanboot reaches the volume: iscsi (the default), or aoe (the volume must be in aoe.exports)' })),
    script: Type.Optional(Type.String({ description: 'iPXE script body (boot: script)' })),
    chap: Type.Optional(
      Type.Object(
        { username: Type.String({ minLength: 1, maxLength: 255 }), secret: Type.String({ minLength: 12, maxLength: 255 }) },
        { additionalProperties: false, description: 'CHAP credentials the node uses to log in to its volume' },
      ),
    ),
  },
  { additionalProperties: false },
);

export const VolumeSchema = Type.Object(
  {
    name: Name,
    size: Type.Optional(Size),
    source: Type.Optional(Type.String({ description: 'create from: a file path, or "demo" for the built-in DISKLESS-OK marker disk' })),
    clone: Type.Optional(
      Type.String({
        pattern: '^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}@[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$',
        description: 'create as a writable clone of VOLUME@SNAPSHOT (a node\'s own copy of a golden image); VOLUME must be declared too; VOLUME@golden is snapshotted when missing',
        examples: ['golden@golden'],
      }),
    ),
    readOnly: Type.Boolean({ default: false }),
  },
  { additionalProperties: false },
);

export const StorageSchema = obj(
  {
    driver: Type.Union([Type.Literal('embedded'), Type.Literal('file'), Type.Literal('zfs')], {
      default: 'embedded',
      description: 'embedded: copy-on-write pool in a directory (snapshots, clones, checksums); file: one sparse file per volume in <dataDir>/volumes, no snapshots; zfs: OpenZFS datasets (zfsDataset)',
    }),
    pool: Type.Optional(Type.String({ minLength: 1, description: 'embedded: the pool directory; default <dataDir>/pool' })),
    mirror: Type.Optional(Type.String({ minLength: 1, description: 'embedded: a second pool directory, ideally on another disk; every extent is kept in both and a bad copy is healed from the good one' })),
    capacity: Type.Optional(Type.Union(Size.anyOf, { description: 'embedded: the most bytes the pool may hold (a byte count or a size like 64MiB, 10G); writes past it fail with STORE_NO_SPACE. Default: what the file system has' })),
    zfsDataset: Type.Optional(
      Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9._:-]*(/[a-zA-Z0-9][a-zA-Z0-9._:-]*)*$', description: 'zfs: the dataset volumes live under (required with driver zfs)', examples: ['tank/diskless'] }),
    ),
  },
  'where volumes live',
);

export const DefaultsSchema = obj(
  {
    unknownNode: Type.Union([Type.Literal('exit'), Type.Literal('menu'), Type.Literal('discovery'), Type.Literal('ignore')], {
      default: 'exit',
      description: 'what an unknown MAC gets: exit (boot next device), menu, discovery (register and wait), ignore (no DHCP answer)',
    }),
    discoveryRetrySeconds: Type.Integer({
      minimum: 1,
      maximum: 3600,
      default: 15,
      description: 'discovery: how long a waiting machine sleeps before asking for its script again (adopting it boots it on the next try)',
    }),
  },
  'policy for machines the inventory does not know',
);

export const ConfigSchema = Type.Object(
  {
    log: LogSchema,
    server: ServerSchema,
    dhcp: DhcpSchema,
    bootFiles: BootFilesSchema,
    ra: RaSchema,
    tftp: TftpSchema,
    http: HttpSchema,
    iscsi: IscsiSchema,
    aoe: AoeSchema,
    storage: StorageSchema,
    defaults: DefaultsSchema,
    nodes: Type.Array(NodeSchema, { default: [] }),
    volumes: Type.Array(VolumeSchema, { default: [] }),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
export type NodeConfig = Static<typeof NodeSchema>;
export type VolumeConfig = Static<typeof VolumeSchema>;
export type AoeExportConfig = Static<typeof AoeExportSchema>;
export type StorageConfig = Static<typeof StorageSchema>;
