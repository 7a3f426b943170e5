import type { Config } from './schema.js';
import { ipv4ToInt, parseCidr } from './ipv4.js';
import { join, resolve } from 'node:path';
import { parseSize } from './parse-size.js';

type Invalid = (key: string, value: unknown, allowed: string) => Error;

/** Rules the schema cannot express: uniqueness, references between keys, addresses inside the subnet. */
export function checkConfigSemantics(config: Config, invalid: Invalid): void {
  const subnet = parseCidr(config.dhcp.subnet);
  const inSubnet = (ip: string) => (ipv4ToInt(ip) & subnet.mask) >>> 0 === subnet.network;
  const { start, end } = config.dhcp.pool;
  if (config.dhcp.mode === 'authoritative') {
    if (!inSubnet(start)) throw invalid('dhcp.pool.start', start, `an address inside dhcp.subnet ${config.dhcp.subnet}`);
    if (!inSubnet(end)) throw invalid('dhcp.pool.end', end, `an address inside dhcp.subnet ${config.dhcp.subnet}`);
    if (ipv4ToInt(end) < ipv4ToInt(start)) throw invalid('dhcp.pool.end', end, `an address not below dhcp.pool.start ${start}`);
  }
  checkStorage(config, invalid);
  const volumes = new Set<string>();
  config.volumes.forEach((v, i) => {
    if (volumes.has(v.name)) throw invalid(`volumes[${i}].name`, v.name, 'a name no other volume has');
    if (v.size !== undefined) {
      try {
        parseSize(v.size);
      } catch {
        throw invalid(`volumes[${i}].size`, v.size, 'a byte count or a size like 64MiB, 10G');
      }
    }
    if (v.clone !== undefined) {
      if (v.size !== undefined || v.source !== undefined) {
        throw invalid(`volumes[${i}].clone`, v.clone, `clone without ${v.size !== undefined ? 'size' : 'source'}: a clone takes its size and contents from the snapshot`);
      }
      if (config.storage.driver === 'file') throw invalid(`volumes[${i}].clone`, v.clone, 'clones with storage.driver embedded or zfs (the file driver has no snapshots)');
      const origin = v.clone.slice(0, v.clone.indexOf('@'));
      if (!volumes.has(origin)) throw invalid(`volumes[${i}].clone`, v.clone, `VOLUME@SNAPSHOT of a volume declared above this one: ${[...volumes].join(', ') || '(none declared above)'}`);
    } else if (v.size === undefined && v.source === undefined) {
      throw invalid(`volumes[${i}].size`, undefined, 'a size, unless source or clone is given');
    }
    volumes.add(v.name);
  });
  const names = new Set<string>();
  const macs = new Set<string>();
  const ips = new Set<string>();
  config.nodes.forEach((n, i) => {
    if (names.has(n.name)) throw invalid(`nodes[${i}].name`, n.name, 'a name no other node has');
    names.add(n.name);
    if (macs.has(n.mac)) throw invalid(`nodes[${i}].mac`, n.mac, 'a MAC no other node has');
    macs.add(n.mac);
    if (n.ip !== undefined) {
      if (!inSubnet(n.ip)) throw invalid(`nodes[${i}].ip`, n.ip, `an address inside dhcp.subnet ${config.dhcp.subnet}`);
      if (ips.has(n.ip)) throw invalid(`nodes[${i}].ip`, n.ip, 'an address no other node has');
      ips.add(n.ip);
    }
    if (n.boot === 'sanboot') {
      if (n.volume === undefined) throw invalid(`nodes[${i}].volume`, undefined, 'the name of a volume (required when boot is sanboot)');
      if (!volumes.has(n.volume)) throw invalid(`nodes[${i}].volume`, n.volume, `one of the declared volumes: ${[...volumes].join(', ') || '(none declared)'}`);
    }
    if (n.boot === 'script' && n.script === undefined) throw invalid(`nodes[${i}].script`, undefined, 'an iPXE script (required when boot is script)');
    if (n.boot === 'sanboot' && n.san === 'aoe') {
      if (!config.aoe.enabled) throw invalid(`nodes[${i}].san`, n.san, 'iscsi, or aoe with aoe.enabled true');
      if (!config.aoe.exports.some((e) => e.volume === n.volume)) throw invalid(`nodes[${i}].san`, n.san, `iscsi, or aoe when volume ${n.volume} is in aoe.exports`);
    }
  });
  const addresses = new Set<string>();
  config.aoe.exports.forEach((e, i) => {
    if (!volumes.has(e.volume)) throw invalid(`aoe.exports[${i}].volume`, e.volume, `one of the declared volumes: ${[...volumes].join(', ') || '(none declared)'}`);
    const at = `e${e.shelf}.${e.slot}`;
    if (addresses.has(at)) throw invalid(`aoe.exports[${i}].slot`, e.slot, `a shelf.slot no other export has (${at} is taken)`);
    addresses.add(at);
  });
}

/** `storage:` keys that belong to one driver only, and the embedded pool's capacity and mirror. */
function checkStorage(config: Config, invalid: Invalid): void {
  const s = config.storage;
  if (s.driver === 'zfs' && s.zfsDataset === undefined) throw invalid('storage.zfsDataset', undefined, 'a dataset such as tank/diskless (required when storage.driver is zfs)');
  if (s.driver !== 'zfs' && s.zfsDataset !== undefined) throw invalid('storage.zfsDataset', s.zfsDataset, `no zfsDataset with storage.driver ${s.driver} (it is for driver zfs)`);
  for (const key of ['pool', 'mirror', 'capacity'] as const) {
    if (s.driver !== 'embedded' && s[key] !== undefined) throw invalid(`storage.${key}`, s[key], `no ${key} with storage.driver ${s.driver} (it is for driver embedded)`);
  }
  if (s.capacity !== undefined) {
    let bytes: number;
    try {
      bytes = parseSize(s.capacity);
    } catch {
      throw invalid('storage.capacity', s.capacity, 'a byte count or a size like 64MiB, 10G');
    }
    if (bytes <= 0) throw invalid('storage.capacity', s.capacity, 'a size above 0');
  }
  const pool = resolve(s.pool ?? join(config.server.dataDir, 'pool'));
  if (s.mirror !== undefined && resolve(s.mirror) === pool) throw invalid('storage.mirror', s.mirror, `a directory other than the pool ${pool}`);
}
