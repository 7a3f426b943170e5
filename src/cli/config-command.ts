import type { Command } from 'commander';
import { stringify } from 'yaml';
import { loadConfigFile, validateConfig } from '../config/load-config.js';
import { BootControl } from '../control/boot-control.js';
import { silentLogger } from '../observe/logger.js';
import { Metrics } from '../observe/metrics.js';

/**
 * `diskless config check FILE`: validates a configuration file (schema, cross-key rules, and
 * every node's iPXE script renders safely) and prints "ok", or fails with `error CONFIG_…: <file>: key …` and exit status 2.
 * `diskless config defaults`: prints the complete configuration an empty file stands for, as
 * YAML, a starting point for a real one.
 */
export function registerConfigCommand(program: Command): void {
  const config = program.command('config').description('check a configuration file, or print the defaults');

  config
    .command('check')
    .description('validate a configuration file and print "ok"')
    .argument('<file>', 'YAML configuration file')
    .action(async (file: string) => {
      const loaded = await loadConfigFile(file);
      new BootControl({ config: loaded, log: silentLogger(), metrics: new Metrics() }).validate();
      process.stdout.write('ok\n');
    });

  config
    .command('defaults')
    .description('print the fully defaulted configuration as YAML')
    .action(() => {
      process.stdout.write(stringify(validateConfig({}, '<defaults>')));
    });
}
