import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { DisklessError } from '../errors/index.js';
import type { AoeTargetSpec } from '../services/aoe/aoe-server.js';
import { FileAoeStateStore } from '../services/aoe/aoe-state-store.js';
import type { VolumeTargets } from './volume-targets.js';

/**
 * The AoE targets the configuration declares (`aoe.exports`), over the volumes VolumeTargets
 * has opened. Each is served on its own interfaces, else `aoe.interfaces`, else the DHCP
 * interfaces; its mask list is the export's `allow`, else the MACs of the nodes that boot
 * that volume (a node's clone answers that node only). State lives in
 * `<dataDir>/aoe/e<shelf>.<slot>.json`.
 */
export function aoeTargetSpecs(config: Config, volumes: Pick<VolumeTargets, 'device'>): AoeTargetSpec[] {
  return config.aoe.exports.map((e) => {
    const open = volumes.device(e.volume);
    if (!open) throw new DisklessError('CONFIG_INVALID', `aoe export e${e.shelf}.${e.slot}: volume ${e.volume} is not open`, { key: 'aoe.exports', value: e.volume, allowed: 'a declared volume' });
    const allow = e.allow ?? config.nodes.filter((n) => n.volume === e.volume).map((n) => n.mac);
    return {
      shelf: e.shelf,
      slot: e.slot,
      device: open.device,
      name: e.volume,
      interfaces: e.interfaces ?? config.aoe.interfaces ?? config.dhcp.interfaces,
      allow: allow.map((m) => m.toLowerCase().replace(/-/g, ':')),
      state: new FileAoeStateStore(join(config.server.dataDir, 'aoe', `e${e.shelf}.${e.slot}.json`)),
      syncWrites: config.aoe.syncWrites,
    };
  });
}
