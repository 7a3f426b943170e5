import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { DisklessError } from '../errors/index.js';
import type { AoeServer, AoeTargetSpec } from '../services/aoe/aoe-server.js';
import { FileAoeStateStore } from '../services/aoe/aoe-state-store.js';
import type { Inventory } from './inventory.js';
import type { VolumeTargets } from './volume-targets.js';

type AoeExport = Config['aoe']['exports'][number];

/** An export's configured allow list: its own `allow`, else the MACs of the nodes booting its volume (both canonical since the config was loaded). */
function exportAllow(e: AoeExport, nodes: Inventory['nodes']): readonly string[] {
  return e.allow ?? nodes.filter((n) => n.volume === e.volume).map((n) => n.mac);
}

/**
 * The AoE targets the configuration declares (`aoe.exports`), over the volumes VolumeTargets
 * has opened. Each is served on its own interfaces, else `aoe.interfaces`, else the DHCP
 * interfaces; its mask list is the export's `allow`, else the MACs of the nodes that boot
 * that volume in `inventory` (a node's clone answers that node only). State lives in
 * `<dataDir>/aoe/e<shelf>.<slot>.json`.
 */
export function aoeTargetSpecs(config: Config, volumes: Pick<VolumeTargets, 'device'>, inventory: Pick<Inventory, 'nodes'> = config): AoeTargetSpec[] {
  return config.aoe.exports.map((e) => {
    const open = volumes.device(e.volume);
    if (!open) throw new DisklessError('CONFIG_INVALID', `aoe export e${e.shelf}.${e.slot}: volume ${e.volume} is not open`, { key: 'aoe.exports', value: e.volume, allowed: 'a declared volume' });
    return {
      shelf: e.shelf,
      slot: e.slot,
      device: open.device,
      name: e.volume,
      interfaces: e.interfaces ?? config.aoe.interfaces ?? config.dhcp.interfaces,
      allow: exportAllow(e, inventory.nodes),
      state: new FileAoeStateStore(join(config.server.dataDir, 'aoe', `e${e.shelf}.${e.slot}.json`)),
      syncWrites: config.aoe.syncWrites,
    };
  });
}

/**
 * After a new node list (SIGHUP, adoption): re-seeds the mask list of every served export that
 * takes its allow list from the nodes, so a node added on a volume can open its target
 * without a restart (and one removed no longer can). Exports with their own `allow` keep it.
 */
export async function reseedAoeTargets(config: Config, server: Pick<AoeServer, 'target'>, inventory: Pick<Inventory, 'nodes'>): Promise<void> {
  for (const e of config.aoe.exports) {
    if (e.allow !== undefined) continue;
    await server.target(e.shelf, e.slot)?.reseed(exportAllow(e, inventory.nodes));
  }
}
