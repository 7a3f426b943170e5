import type { Command } from 'commander';
import type { LevelWithSilent } from 'pino';
import { loadConfigFile, validateConfig } from '../config/load-config.js';
import { createLogger } from '../observe/logger.js';
import { Metrics } from '../observe/metrics.js';
import { runServer, type RunningServer } from '../main.js';
import { Inventory } from '../control/inventory.js';
import type { Logger } from '../observe/logger.js';

/**
 * `diskless serve [--config FILE]`: runs every enabled service until SIGINT or SIGTERM, then
 * stops them in reverse order and exits 0. Without --config the embedded defaults are used.
 * Start-up failures (bad config, a port in use) exit non-zero with `error CODE: message`.
 * SIGHUP re-reads --config and applies its nodes and defaults.unknownNode live (adopting a
 * discovered machine needs no restart; AoE exports whose mask list defaults to the nodes
 * booting their volume are re-seeded from the new list); other keys need a restart, and a bad file is logged
 * and ignored, leaving the running inventory in place.
 */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the boot servers (DHCP, RA, TFTP, HTTP, iSCSI) until interrupted')
    .option('-c, --config <file>', 'YAML configuration file (default: built-in defaults)')
    .action(async (opts: { config?: string }) => {
      const config = opts.config === undefined ? validateConfig({}, '<defaults>') : await loadConfigFile(opts.config);
      const log = createLogger({ level: config.log.level as LevelWithSilent });
      const controller = new AbortController();
      const onSignal = (signal: NodeJS.Signals) => {
        log.info({ signal }, 'stopping');
        controller.abort();
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      // Sockets keep the process alive while services run; this keeps it alive even when the
      // configuration enables none, until a signal arrives.
      const keepAlive = setInterval(() => undefined, 1 << 30);
      try {
        const running = await runServer(config, { signal: controller.signal, log, metrics: new Metrics() });
        const onHangup = () => void reloadInventory(opts.config, running, log);
        process.on('SIGHUP', onHangup);
        await running.stopped;
        process.off('SIGHUP', onHangup);
      } finally {
        clearInterval(keepAlive);
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}

async function reloadInventory(file: string | undefined, running: RunningServer, log: Logger): Promise<void> {
  if (file === undefined) {
    log.warn('SIGHUP ignored: serve was started without --config');
    return;
  }
  try {
    const next = await loadConfigFile(file);
    running.control.setInventory(Inventory.fromConfig(next));
    log.info({ file, nodes: next.nodes.length }, 'inventory reloaded');
  } catch (err) {
    log.error({ file, err }, 'inventory reload failed; keeping the running inventory');
  }
}
