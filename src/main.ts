/**
 * The one composition root: configuration → control layer → services, started in order and
 * stopped in reverse when the caller's AbortSignal fires. Only this file wires layers
 * together; the CLI (`diskless serve`), the lab and the e2e tests all call `runServer`.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from './config/schema.js';
import { BootControl } from './control/boot-control.js';
import type { Logger } from './observe/logger.js';
import { silentLogger } from './observe/logger.js';
import { Metrics } from './observe/metrics.js';
import { HttpBootServer } from './services/http/http-boot-server.js';
import { RaServer } from './services/ra/ra-server.js';
import { TftpServer } from './services/tftp/tftp-server.js';
import { DhcpServer } from './services/dhcp/dhcp-server.js';
import { IscsiServer } from './services/iscsi/iscsi-server.js';
import { AoeServer } from './services/aoe/aoe-server.js';
import { aoeTargetSpecs, reseedAoeTargets } from './control/aoe-exports.js';
import { VolumeTargets } from './control/volume-targets.js';
import { openStorageDriver, storageChoiceFromConfig } from './control/storage-choice.js';
import { provisionBootFiles } from './control/provision-boot-files.js';
import type { Service } from './services/service.js';

export interface RunServerOptions {
  /** Aborting it stops every service in reverse start order; `RunningServer.stopped` then resolves. */
  readonly signal: AbortSignal;
  /** Root logger; each service gets a child with `{ service }` bound. Default: silent. */
  readonly log?: Logger;
  /** Shared by every service and rendered at GET /metrics. Default: a fresh instance. */
  readonly metrics?: Metrics;
}

export interface RunningServer {
  /** The started services, in start order (the control layer first). */
  readonly services: readonly Service[];
  /** The control layer: BootPolicy for DHCP, ScriptSource for HTTP; `setInventory` applies a new node list live. */
  readonly control: BootControl;
  readonly metrics: Metrics;
  /** Resolves once every service has stopped after the signal fired; rejects only on a bug. */
  readonly stopped: Promise<void>;
}

/** What every service factory below may use. */
interface Wiring {
  readonly config: Config;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** BootPolicy (DHCP), ScriptSource (HTTP). */
  readonly control: BootControl;
}

/** Directories derived from the config: explicit keys win, else folders of server.dataDir. */
function directories(config: Config): { http: string; tftp: string } {
  return {
    http: config.http.root ?? join(config.server.dataDir, 'http'),
    tftp: config.tftp.root ?? join(config.server.dataDir, 'tftp'),
  };
}

/**
 * Constructs the services `config` enables, in start order (stopped in reverse). Adding a
 * service is one entry in this list: `config.x.enabled ? new XServer({ ...from config, log,
 * metrics, policy: control }) : undefined`. Servers that decide nothing themselves take the
 * control layer through their own narrow interface (BootPolicy, ScriptSource).
 */
function buildServices(w: Wiring): Service[] {
  const { config, log, metrics, control } = w;
  const dirs = directories(config);
  // Start order: whatever a booting machine reaches last starts first, so by the time DHCP
  // answers, the boot file, the script and the volume are already served.
  const services: Array<Service | undefined> = [
    control,
    ...volumeServices(w),
    config.http.enabled
      ? new HttpBootServer({ address: config.http.address, port: config.http.port, root: dirs.http, bootFilesRoot: dirs.tftp, scripts: control, metrics, log })
      : undefined,
    config.tftp.enabled
      ? new TftpServer({
          root: dirs.tftp,
          address: config.tftp.address,
          port: config.tftp.port,
          maxBlockSize: config.tftp.maxBlockSize,
          maxWindowSize: config.tftp.maxWindowSize,
          timeoutMs: config.tftp.timeoutMs,
          retries: config.tftp.retries,
          log,
          metrics,
        })
      : undefined,
    config.ra.enabled
      ? new RaServer({
          interfaces: config.ra.interfaces ?? config.dhcp.interfaces,
          intervalSeconds: config.ra.intervalSeconds,
          ...(config.ra.prefix === undefined ? {} : { prefix: config.ra.prefix }),
          log,
          metrics,
        })
      : undefined,
    config.dhcp.mode !== 'off'
      ? new DhcpServer({
          config: { dhcp: config.dhcp },
          serverAddress: config.server.address,
          dataDir: config.server.dataDir,
          policy: control,
          reservedAddresses: config.nodes.flatMap((n) => (n.ip === undefined ? [] : [n.ip])),
          log,
          metrics,
        })
      : undefined,
  ];
  return services.filter((s): s is Service => s !== undefined);
}

/** The volumes (created and opened first), then the iSCSI and AoE targets serving them. */
function volumeServices(w: Wiring): Service[] {
  const { config, log, metrics, control } = w;
  if (!config.iscsi.enabled && !config.aoe.enabled) return [];
  const storage = storageChoiceFromConfig(config);
  const targets = VolumeTargets.fromConfig(config, () => openStorageDriver(storage, log), () => control.inventory, log);
  const aoe = config.aoe.enabled ? new AoeServer({ targets: () => aoeTargetSpecs(config, targets, control.inventory), bufferCount: config.aoe.bufferCount, log, metrics }) : undefined;
  // Mask lists that follow the node list follow it live (a reload or an adoption).
  if (aoe) control.onInventory((inventory) => void reseedAoeTargets(config, aoe, inventory).catch((err: unknown) => log.error({ err }, 'AoE mask lists not re-seeded')));
  return [targets, ...(config.iscsi.enabled ? [new IscsiServer({ address: config.iscsi.address, port: config.iscsi.port, targets, log, metrics })] : []), ...(aoe ? [aoe] : [])];
}

/**
 * Starts everything and resolves once every service is bound and answering. If one fails to
 * start, the ones already started are stopped (reverse order) and the error is rethrown, so a
 * failed start leaves no socket open. Called once per process by `diskless serve`.
 */
export async function runServer(config: Config, options: RunServerOptions): Promise<RunningServer> {
  const log = options.log ?? silentLogger();
  const metrics = options.metrics ?? new Metrics();
  const control = new BootControl({ config, log, metrics });
  const dirs = directories(config);
  await mkdir(dirs.http, { recursive: true });
  const copied = await provisionBootFiles(config.bootFiles, dirs.tftp);
  if (copied.length) log.info({ copied }, 'boot files provisioned into the TFTP root');
  const services = buildServices({ config, log, metrics, control });
  const started: Service[] = [];
  try {
    for (const service of services) {
      if (options.signal.aborted) break;
      await service.start();
      started.push(service);
      log.info({ service: service.name }, 'service started');
    }
  } catch (err) {
    await stopAll(started, log);
    throw err;
  }
  const stopped = new Promise<void>((resolve) => {
    const stop = () => void stopAll(started, log).then(resolve);
    if (options.signal.aborted) stop();
    else options.signal.addEventListener('abort', stop, { once: true });
  });
  return { services: started, control, metrics, stopped };
}

/** Stops services in reverse start order; one failing to stop does not keep the others running. */
async function stopAll(started: readonly Service[], log: Logger): Promise<void> {
  for (const service of [...started].reverse()) {
    try {
      await service.stop();
      log.info({ service: service.name }, 'service stopped');
    } catch (err) {
      log.error({ service: service.name, err }, 'service failed to stop cleanly');
    }
  }
}
