import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LoggerOptions {
  readonly level: LevelWithSilent;
  /** File descriptor for the JSON lines; 2 (stderr) keeps stdout free for command output. */
  readonly fd?: number;
}

/**
 * Structured JSON logs (pino). Built once in the composition root; each server gets a child
 * logger with `{ service: 'dhcp' }` bound. Per-packet events go at debug/trace only.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino({ level: options.level, base: { pid: process.pid } }, pino.destination({ fd: options.fd ?? 2, sync: true }));
}

/** A logger that writes nothing, for tests and library callers. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
