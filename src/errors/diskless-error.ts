import { catalogue, type ErrorCode } from './catalogue.js';

/**
 * The one error type every layer throws. `code` is stable and listed in docs/errors.md;
 * tests assert on it, never on `message`. `data` carries the facts behind the message
 * (field, value, allowed values) for logs and API clients.
 */
export class DisklessError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly data: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DisklessError';
    this.code = code;
    this.retryable = catalogue[code].retryable;
    this.data = data;
  }
}

/** True when `err` is a DisklessError, optionally with the given code. */
export function isDisklessError(err: unknown, code?: ErrorCode): err is DisklessError {
  return err instanceof DisklessError && (code === undefined || err.code === code);
}
