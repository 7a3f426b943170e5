import type { ErrorTable } from './error-spec.js';

/** Errors of the AoE target (services/aoe) and the project's AoE initiator (clients/aoe). */
export const aoeErrors = {
  AOE_STATE_FILE: { summary: 'a target\'s saved AoE state (config string, mask list, reserve list) cannot be read, is not valid JSON of the expected shape, or cannot be written', retryable: false },
  AOE_TARGET_CONFLICT: { summary: 'two AoE targets claim the same shelf.slot on one interface, or a shelf/slot is outside 0-65534 / 0-254', retryable: false },
  AOE_TIMEOUT: { summary: 'an AoE request got no response after every retransmission (target down, wrong interface, or this MAC not on its mask list)', retryable: true },
  AOE_ERROR_RESPONSE: { summary: 'an AoE target answered with an error: an AoE error code (1-6) or an ATA status with ERR set; details carry the codes', retryable: false },
} as const satisfies ErrorTable;
