import { CommanderError, type Command } from 'commander';
import { isDisklessError } from '../errors/index.js';
import { configErrors } from '../errors/config-errors.js';

/** Process exit statuses of the `diskless` command. */
export const ExitCode = {
  ok: 0,
  /** The command ran and failed: a server did not start, a boot failed. */
  runtime: 1,
  /** Bad command line or bad configuration: fix the input, retrying will not help. */
  usage: 2,
} as const;

/**
 * Parses `argv` and runs the matching action, turning every failure into an exit status and
 * one line on stderr: a DisklessError prints `error CODE: message` (exit 2 for usage and
 * configuration codes, 1 for the rest); commander's own usage errors (unknown option, missing
 * argument) keep commander's message and exit 2; anything else is a bug and prints its stack
 * (exit 1). Called once by src/cli/main.ts; returns the exit status instead of exiting so
 * output streams flush and `finally` blocks of the actions run.
 */
export async function runCli(program: Command, argv: readonly string[], stderr: NodeJS.WritableStream = process.stderr): Promise<number> {
  // Every command, however deep, throws CommanderError instead of calling process.exit.
  const override = (c: Command): void => {
    c.exitOverride();
    c.commands.forEach(override);
  };
  override(program);
  try {
    await program.parseAsync([...argv]);
    return ExitCode.ok;
  } catch (err) {
    return exitStatusFor(err, stderr);
  }
}

/** Maps one failure to its exit status and writes its one-line (or stack) report. */
export function exitStatusFor(err: unknown, stderr: NodeJS.WritableStream): number {
  if (err instanceof CommanderError) {
    // --help and --version end with exitCode 0; commander has already printed its message.
    return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  }
  if (isDisklessError(err)) {
    stderr.write(`error ${err.code}: ${err.message}\n`);
    return err.code in configErrors ? ExitCode.usage : ExitCode.runtime;
  }
  stderr.write(`unexpected error (a bug, please report it):\n${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return ExitCode.runtime;
}
