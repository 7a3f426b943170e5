import type { ErrorTable } from './error-spec.js';

/** Errors raised by the HTTP boot server (src/services/http). */
export const httpErrors = {
  HTTP_BAD_MAC: { summary: 'the MAC address in a /boot/<mac>.ipxe URL is not 6 hex bytes in a known notation', retryable: false },
  HTTP_LISTEN_FAILED: { summary: 'the HTTP boot server cannot listen on its address and port (in use, not local, no permission)', retryable: true },
} as const satisfies ErrorTable;
