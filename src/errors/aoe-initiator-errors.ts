import type { ErrorTable } from './error-spec.js';

/**
 * Errors raised only by src/clients/aoe, the project's own AoE initiator (tests, `diskless aoe`,
 * bench:aoe). It also raises AOE_TIMEOUT and AOE_ERROR_RESPONSE from ./aoe-errors.ts.
 */
export const aoeInitiatorErrors = {
  AOE_MASK_REJECTED: { summary: 'the target refused a Mac Mask List edit (MError 1 unspecified, 2 bad directive, 3 list full); data.directive is the failing index', retryable: false },
  AOE_BAD_RESPONSE: { summary: 'an AoE answer does not fit its request (read data shorter than the sectors asked for, a malformed argument)', retryable: false },
  AOE_INVALID_REQUEST: { summary: 'an AoE initiator call has a bad argument (LBA, sector count, data not whole 512-byte sectors, no target shelf/slot)', retryable: false },
  AOE_OUT_OF_RANGE: { summary: 'a read or write reaches past the end of the AoE device (its IDENTIFY DEVICE capacity)', retryable: false },
  AOE_CLOSED: { summary: 'the AoE initiator was closed while commands waited for answers, or used after close()', retryable: false },
} as const satisfies ErrorTable;
