import { MAX_MASK_LIST, MaskDirective, MaskError, type MaskDirectiveEntry } from '../../wire/aoe/mac-mask-list.js';
import { AoeError } from '../../wire/aoe/aoe-header.js';
import { MAX_RESERVE_LIST, ReserveCommand } from '../../wire/aoe/reserve-release.js';

/**
 * The two per-target MAC lists of AoE r11, as pure functions over lists of MACs in the
 * project's canonical text form ("52:54:00:12:34:56"):
 * - the Mac Mask List (§3.3): when not empty, only the MACs on it are answered at all;
 * - the reserve list (§3.4): when not empty, only the MACs on it may send ATA commands
 *   (IDENTIFY DEVICE excepted, so an initiator can still see what the device is) or set it.
 * Edits are all-or-nothing: a bad directive leaves the list as it was (vblade applies the
 * directives before the bad one; a half-applied allow list is worse than a refused edit).
 */

export function macText(mac: Buffer): string {
  const h = mac.toString('hex', 0, 6);
  return `${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}:${h.slice(6, 8)}:${h.slice(8, 10)}:${h.slice(10, 12)}`;
}

export type MaskEditResult = { readonly ok: true; readonly list: readonly string[] } | { readonly ok: false; readonly error: number; readonly index: number };

/** The mask list after `directives`, in order; or the MError and index of the first directive that fails (the list unchanged). */
export function editMaskList(list: readonly string[], directives: readonly MaskDirectiveEntry[], max = MAX_MASK_LIST): MaskEditResult {
  const next = [...list];
  for (let i = 0; i < directives.length; i++) {
    const d = directives[i]!;
    const mac = macText(d.mac);
    if (d.command === MaskDirective.none) continue;
    if (d.command === MaskDirective.add) {
      if (next.includes(mac)) continue;
      if (next.length >= max) return { ok: false, error: MaskError.listFull, index: i };
      next.push(mac);
    } else if (d.command === MaskDirective.delete) {
      const at = next.indexOf(mac);
      if (at >= 0) next.splice(at, 1);
    } else return { ok: false, error: MaskError.badDirective, index: i };
  }
  return { ok: true, list: next };
}

/** True when `source` may send ATA commands to a target with this reserve list. */
export function reserveAdmits(reserve: readonly string[], source: string): boolean {
  return reserve.length === 0 || reserve.includes(source);
}

export type ReserveResult = { readonly ok: true; readonly list: readonly string[] } | { readonly ok: false; readonly aoeError: number };

/** The reserve list after a Reserve/Release request from `source`; or the AoE error to answer (the list unchanged). */
export function applyReserve(list: readonly string[], command: number, macs: readonly Buffer[], source: string): ReserveResult {
  switch (command) {
    case ReserveCommand.read:
      return { ok: true, list };
    case ReserveCommand.set:
    case ReserveCommand.forceSet:
      // A set from outside a non-empty list is refused; a force set works for anyone.
      if (command === ReserveCommand.set && !reserveAdmits(list, source)) return { ok: false, aoeError: AoeError.targetReserved };
      if (macs.length > MAX_RESERVE_LIST) return { ok: false, aoeError: AoeError.badArgument };
      return { ok: true, list: [...new Set(macs.map(macText))] };
    default:
      return { ok: false, aoeError: AoeError.badArgument };
  }
}
