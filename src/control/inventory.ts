import type { Config, NodeConfig, VolumeConfig } from '../config/schema.js';

/**
 * The machines and volumes this server knows, indexed for the per-request lookups of the
 * boot path (by MAC for DHCP and HTTP, by name for volumes). Built from a validated Config
 * (MACs already lower-case colon form, references already checked by loadConfig). Immutable:
 * a new configuration builds a new Inventory and `BootControl.setInventory` swaps it in.
 */
export class Inventory {
  private readonly byMac: ReadonlyMap<string, NodeConfig>;
  private readonly byVolume: ReadonlyMap<string, VolumeConfig>;

  constructor(
    readonly nodes: readonly NodeConfig[],
    readonly volumes: readonly VolumeConfig[],
    /** What a MAC not in `nodes` gets (config `defaults.unknownNode`). */
    readonly unknownNode: Config['defaults']['unknownNode'],
  ) {
    this.byMac = new Map(nodes.map((n) => [canonicalMac(n.mac), n]));
    this.byVolume = new Map(volumes.map((v) => [v.name, v]));
  }

  static fromConfig(config: Config): Inventory {
    return new Inventory(config.nodes, config.volumes, config.defaults.unknownNode);
  }

  /** The node with this MAC (any case, `:` or `-` separators), or undefined. O(1). */
  node(mac: string): NodeConfig | undefined {
    return this.byMac.get(canonicalMac(mac));
  }

  volume(name: string): VolumeConfig | undefined {
    return this.byVolume.get(name);
  }
}

/** A MAC as the inventory keys it: lower case, colons (DHCP and HTTP hand them in either form). */
export function canonicalMac(mac: string): string {
  return mac.toLowerCase().replace(/-/g, ':');
}
