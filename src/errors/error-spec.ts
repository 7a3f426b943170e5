/** One catalogue entry: what the code means and whether trying again can help. */
export interface ErrorSpec {
  /** One line for docs/errors.md: the cause, not the message. */
  readonly summary: string;
  /** True when the same call may succeed later (a busy resource, a timeout). */
  readonly retryable: boolean;
}

export type ErrorTable = Readonly<Record<string, ErrorSpec>>;
