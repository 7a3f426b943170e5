/**
 * The one composition root: configuration → control layer → services, started in order and
 * stopped in reverse when the caller's AbortSignal fires. Only this file wires layers
 * together; the CLI (`diskless serve`), the lab and the e2e tests all call `runServer`.
 */
import type { Config } from './config/schema.js';
import type { Logger } from './observe/logger.js';
import { silentLogger } from './observe/logger.js';
import { Metrics } from './observe/metrics.js';
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
  /** The started services, in start order. */
  readonly services: readonly Service[];
  readonly metrics: Metrics;
  /** Resolves once every service has stopped after the signal fired; rejects only on a bug. */
  readonly stopped: Promise<void>;
}

/** What every service factory below may use. */
interface Wiring {
  readonly config: Config;
  readonly log: Logger;
  readonly metrics: Metrics;
}

/**
 * Constructs the services `config` enables, in start order. Adding a service is one entry
 * here: construct it from its config section and the shared wiring.
 */
function buildServices(w: Wiring): Service[] {
  const services: Array<Service | undefined> = [];
  void w;
  return services.filter((s): s is Service => s !== undefined);
}

/**
 * Starts everything and resolves once every service is bound and answering. If one fails to
 * start, the ones already started are stopped (reverse order) and the error is rethrown, so a
 * failed start leaves no socket open. Called once per process by `diskless serve`.
 */
export async function runServer(config: Config, options: RunServerOptions): Promise<RunningServer> {
  const log = options.log ?? silentLogger();
  const metrics = options.metrics ?? new Metrics();
  const services = buildServices({ config, log, metrics });
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
  return { services: started, metrics, stopped };
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
