#!/usr/bin/env node
/**
 * The `diskless` command. Command groups are registered explicitly, in help order: each lives
 * in its own file exporting `register<X>Command(program)`. To add one: one import and one
 * call line below. Nothing registers itself by import side effect.
 */
import { setFlagsFromString } from 'node:v8';
import { Command } from 'commander';
import { runCli } from './run-cli.js';
import { registerConfigCommand } from './config-command.js';
import { registerServeCommand } from './serve-command.js';
import { registerLabCommand } from './lab-command.js';
import { registerUpCommand } from './up-command.js';
import { registerExportCommand } from './export-command.js';
import { registerVolumeCommand } from './volume-command.js';
import { registerAoeCommand } from './aoe-command.js';

// V8's allocation-site pretenuring, fed by the burst of long-lived objects a pool allocates
// when it opens, sent per-command allocation sites to old space in ~1 of 4 embedded iSCSI
// servers (12 of 52): 5-10x the mark-compacts, 2.5 ms scavenges instead of 0.4, and 10-15% fewer IOPS
// for the life of the process (docs/iscsi.md, "Garbage collection"). Set before any of it runs.
setFlagsFromString('--no-allocation-site-pretenuring');

const program = new Command('diskless')
  .description('diskless boot platform: DHCP/proxyDHCP, IPv6 RA, TFTP, HTTP and iSCSI from one server')
  .version('0.1.0');

registerConfigCommand(program);
registerServeCommand(program);
registerLabCommand(program);
registerUpCommand(program);
registerExportCommand(program);
registerVolumeCommand(program);
registerAoeCommand(program);

process.exitCode = await runCli(program, process.argv);
