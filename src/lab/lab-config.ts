import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import type { Config } from '../config/schema.js';
import { DisklessError } from '../errors/index.js';
import { LAB_DEFAULTS, type LabOptions } from './lab.js';

/** MAC of the demo node in the lab's default configuration; `diskless lab boot` uses it by default. */
export const LAB_DEMO_MAC = '52:54:00:d1:5c:01';
/** Name of the demo node and of its volume (the built-in DISKLESS-OK disk). */
export const LAB_DEMO_NODE = 'demo';

/** Options of the lab's default server configuration. */
export interface LabConfigOptions {
  /** Where the server keeps leases, volumes and boot files (config `server.dataDir`). */
  readonly dataDir: string;
  readonly mac?: string;
  readonly bridge?: string;
}

/**
 * The configuration `diskless lab up` runs the server with when no --config is given: the
 * server on the lab bridge at 10.77.0.1, the embedded defaults otherwise, and one demo node
 * that sanboots the built-in demo disk. A plain object, validated by `validateConfig` like any
 * user file.
 */
export function labConfigDocument(options: LabConfigOptions): Record<string, unknown> {
  return {
    server: { address: LAB_DEFAULTS.address, dataDir: options.dataDir },
    dhcp: { interfaces: [options.bridge ?? LAB_DEFAULTS.bridge], subnet: `10.77.0.0/${LAB_DEFAULTS.prefixLength}` },
    // UEFI firmware PXE gets snponly.efi: it drives the NIC through the firmware's own SNP
    // driver and starts in ~40 ms under TCG, where ipxe.efi's driver probe takes ~4.2 s.
    bootFiles: { uefiPreferSnp: true },
    nodes: [{ name: LAB_DEMO_NODE, mac: options.mac ?? LAB_DEMO_MAC, boot: 'sanboot', volume: LAB_DEMO_NODE }],
    volumes: [{ name: LAB_DEMO_NODE, source: 'demo' }],
  };
}

/** Writes `labConfigDocument(options)` as YAML to `path`. */
export async function writeLabConfig(path: string, options: LabConfigOptions): Promise<void> {
  await writeFile(path, `# written by diskless lab up: the lab server's configuration\n${stringify(labConfigDocument(options))}`);
}

/**
 * The Lab options a server configuration implies: the bridge is the first DHCP interface, at
 * `server.address` with the prefix length of `dhcp.subnet`. The server address must lie in the
 * subnet, else LAB_INVALID_OPTION.
 */
export function labOptionsFromConfig(config: Config, namespace: string): LabOptions {
  const [net, len] = config.dhcp.subnet.split('/');
  const prefixLength = Number(len);
  const toInt = (a: string) => a.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
  if (((toInt(config.server.address) & mask) >>> 0) !== ((toInt(net!) & mask) >>> 0)) {
    throw new DisklessError('LAB_INVALID_OPTION', `server.address ${config.server.address} is not in dhcp.subnet ${config.dhcp.subnet}: the lab bridge needs an address on the boot segment`, {
      field: 'server.address',
      value: config.server.address,
      allowed: `an address in ${config.dhcp.subnet}`,
    });
  }
  return { namespace, address: config.server.address, prefixLength, bridge: config.dhcp.interfaces[0] ?? LAB_DEFAULTS.bridge };
}
