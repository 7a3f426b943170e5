/**
 * A TargetResolver over a fixed list of targets: for `diskless export iscsi`, the lab's
 * single demo target and tests. Every initiator sees every target (no ACLs).
 */
import type { InitiatorInfo, TargetBinding, TargetListing, TargetResolver } from './target-resolver.js';

/** One exported target. */
export interface StaticTarget extends Omit<TargetBinding, 'release'> {
  readonly name: string;
  readonly addresses?: readonly string[];
}

export class StaticTargetResolver implements TargetResolver {
  private readonly byName: ReadonlyMap<string, StaticTarget>;

  constructor(targets: readonly StaticTarget[]) {
    this.byName = new Map(targets.map((t) => [t.name, t]));
  }

  async listTargets(_initiator: InitiatorInfo): Promise<readonly TargetListing[]> {
    return [...this.byName.values()].map((t) => ({ name: t.name, ...(t.addresses ? { addresses: t.addresses } : {}) }));
  }

  async resolve(targetName: string, _initiator: InitiatorInfo): Promise<TargetBinding | null> {
    return this.byName.get(targetName) ?? null;
  }
}
