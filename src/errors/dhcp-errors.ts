import type { ErrorTable } from './error-spec.js';

/** Errors raised by the BOOTP/DHCP codec (src/wire/dhcp) and the DHCP server (src/services/dhcp). */
export const dhcpErrors = {
  DHCP_TRUNCATED: { summary: 'a BOOTP/DHCP message is shorter than its 236-byte fixed part plus the 4-byte magic cookie', retryable: false },
  DHCP_BAD_COOKIE: { summary: 'the options field does not start with the DHCP magic cookie 99.130.83.99 (RFC 2131 §3)', retryable: false },
  DHCP_BAD_FIELD: { summary: 'a fixed BOOTP field has a value the protocol does not allow (op, hlen, overload value)', retryable: false },
  DHCP_OPTION_OVERRUN: { summary: "an option's length runs past the end of the field that holds it (options, file or sname)", retryable: false },
  DHCP_MISSING_END: { summary: 'an options field (or an overloaded file/sname field) ends without the End option 255', retryable: false },
  DHCP_BAD_OPTION_LENGTH: { summary: "an option's length does not fit its type (RFC 2132, RFC 4578), e.g. option 53 not 1 byte", retryable: false },
  DHCP_BAD_OPTION_VALUE: { summary: "an option's value is outside what its definition allows (unknown message type, overload not 1-3)", retryable: false },
  DHCP_MESSAGE_TOO_LONG: { summary: 'the options to send do not fit the largest message the client accepts, even with option overload', retryable: false },
  DHCP_POOL_EXHAUSTED: { summary: 'no address of the dynamic pool is free (every one is leased, reserved or declined)', retryable: true },
  DHCP_LEASE_STORE_CORRUPT: { summary: 'the lease file exists but is not valid JSON of the expected shape', retryable: false },
} as const satisfies ErrorTable;
