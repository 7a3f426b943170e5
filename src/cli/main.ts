#!/usr/bin/env node
/**
 * The `diskless` command. Command groups are registered explicitly, in help order: each lives
 * in its own file exporting `register<X>Command(program)`. To add one: one import and one
 * call line below. Nothing registers itself by import side effect.
 */
import { Command } from 'commander';
import { runCli } from './run-cli.js';
import { registerConfigCommand } from './config-command.js';
import { registerServeCommand } from './serve-command.js';
import { registerLabCommand } from './lab-command.js';
import { registerUpCommand } from './up-command.js';
import { registerExportCommand } from './export-command.js';
import { registerVolumeCommand } from './volume-command.js';

const program = new Command('diskless')
  .description('diskless boot platform: DHCP/proxyDHCP, IPv6 RA, TFTP, HTTP and iSCSI from one server')
  .version('0.1.0');

registerConfigCommand(program);
registerServeCommand(program);
registerLabCommand(program);
registerUpCommand(program);
registerExportCommand(program);
registerVolumeCommand(program);

process.exitCode = await runCli(program, process.argv);
