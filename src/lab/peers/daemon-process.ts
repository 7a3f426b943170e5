import type { ChildProcess } from 'node:child_process';
import { DisklessError } from '../../errors/index.js';
import { sleep } from '../lab.js';

/**
 * A daemon running in the foreground inside the lab (dnsmasq --no-daemon, tgtd -f), watched
 * for readiness and stopped by pid. Its output is kept (last 64 KiB) for error messages.
 */
export class DaemonProcess {
  readonly name: string;
  readonly child: ChildProcess;
  #output = '';
  #exited = false;
  readonly #exitPromise: Promise<void>;

  constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.child = child;
    const take = (b: Buffer) => {
      this.#output = (this.#output + b.toString('utf8')).slice(-64 * 1024);
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    this.#exitPromise = new Promise((resolve) => {
      child.once('close', () => {
        this.#exited = true;
        resolve();
      });
      child.once('error', (err) => {
        this.#output += `\n${err.message}`;
        this.#exited = true;
        resolve();
      });
    });
  }

  /** Everything the daemon printed so far (tail). */
  get output(): string {
    return this.#output;
  }

  get exited(): boolean {
    return this.#exited;
  }

  /**
   * Polls `ready` every 50 ms until it returns true. LAB_PROCESS_EXITED if the daemon dies
   * first, LAB_TIMEOUT after `timeoutMs` (the daemon is then killed).
   */
  async waitReady(ready: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#exited) {
        throw new DisklessError('LAB_PROCESS_EXITED', `${this.name} exited while starting: ${this.#output.trim().split('\n').slice(-3).join(' | ')}`, { process: this.name, output: this.#output });
      }
      if (await ready()) return;
      if (Date.now() > deadline) {
        await this.stop('SIGKILL', 0);
        throw new DisklessError('LAB_TIMEOUT', `${this.name} not ready after ${timeoutMs} ms`, { process: this.name, timeoutMs, output: this.#output });
      }
      await sleep(50);
    }
  }

  /** Sends `signal`, then SIGKILL after `graceMs` if still running; resolves once it has exited. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 3000): Promise<void> {
    if (this.#exited) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      await this.#exitPromise;
    } finally {
      clearTimeout(timer);
    }
  }
}
