/**
 * The unit attention each new session starts with, from the I_T nexuses each device has seen
 * since the target started (SAM-5 §6.3, SPC-4 §5.14).
 */
import type { AscPair } from '../../wire/scsi/scsi-constants.js';
import type { EstablishedSession } from './login-negotiator.js';
import { UnitAttentionAsc } from './unit-attention.js';

const MAX_KNOWN_NEXUSES = 4096;

/** I_T nexuses (initiator port name: initiator name + ISID) that have logged in to each device since the target started. */
const knownNexuses = new WeakMap<object, Set<string>>();

/**
 * The unit attention a new session starts with (SAM-5 §6.3, SPC-4 §5.14): an initiator port
 * the device has not seen since the target started gets 29/00 POWER ON, RESET, OR BUS DEVICE
 * RESET OCCURRED; one seen before (its earlier session ended: logout, drop, reinstatement)
 * gets 29/07 I_T NEXUS LOSS OCCURRED. Called by IscsiConnection once per login with a bound
 * device (`s.binding` must be set); records the nexus as seen.
 */
export function nexusAttention(s: EstablishedSession): AscPair {
  const device = s.binding!.device;
  let seen = knownNexuses.get(device);
  if (!seen) knownNexuses.set(device, (seen = new Set()));
  const nexus = `${s.initiatorName},i,0x${s.isid.toString(16).padStart(12, '0')}`;
  if (seen.has(nexus)) return UnitAttentionAsc.itNexusLoss;
  // Bounded memory: past MAX_KNOWN_NEXUSES the oldest is forgotten (it would see 29/00 again).
  if (seen.size >= MAX_KNOWN_NEXUSES) seen.delete(seen.values().next().value!);
  seen.add(nexus);
  return UnitAttentionAsc.powerOnOrReset;
}
