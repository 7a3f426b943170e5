import type { ErrorTable } from './error-spec.js';

/** Errors raised while reading and validating configuration and CLI input. */
export const configErrors = {
  CONFIG_NOT_FOUND: { summary: 'the configuration file does not exist or cannot be read', retryable: false },
  CONFIG_SYNTAX: { summary: 'the configuration file is not valid YAML', retryable: false },
  CONFIG_INVALID: { summary: 'a configuration key has a value the schema does not allow', retryable: false },
  USAGE: { summary: 'a command-line argument is missing or has a value that is not allowed', retryable: false },
} as const satisfies ErrorTable;
