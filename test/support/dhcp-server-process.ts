/**
 * Runs one DhcpServer in its own process, so a test can put it inside a network namespace
 * (`ip netns exec NS node dhcp-server-process.js '<json>'`). The JSON is a partial config
 * (`server`, `dhcp`, `bootFiles` sections, validated by the real schema) plus `reservations`
 * (MAC → address). The BootPolicy is the simplest real one: iPXE gets
 * http://<server>:8080/boot/<mac>.ipxe, firmware gets its arch's iPXE binary
 * (control/boot-file.ts). Protocol on stdio, one JSON object per line:
 *   out {"event":"ready"} once answering; in "metrics" → out {"event":"metrics","text":...};
 *   in "stop" (or SIGTERM) → stops cleanly, out {"event":"stopped"}, exit 0.
 * Set DD_DHCP_DEBUG=1 for debug logs on stderr.
 */
import { createInterface } from 'node:readline';
import { validateConfig } from '../../src/config/load-config.js';
import { firmwareBootFile } from '../../src/control/boot-file.js';
import { createLogger, silentLogger } from '../../src/observe/logger.js';
import { Metrics } from '../../src/observe/metrics.js';
import type { BootClient, BootDecision, BootPolicy } from '../../src/services/dhcp/boot-policy.js';
import { DhcpServer } from '../../src/services/dhcp/dhcp-server.js';

interface ProcessOptions {
  readonly config: Record<string, unknown>;
  readonly reservations?: Record<string, string>;
  /** Clients whose MAC is listed here get no answer (policy null). */
  readonly ignore?: readonly string[];
}

const input = JSON.parse(process.argv[2] ?? '{}') as ProcessOptions;
const config = validateConfig(input.config, 'dhcp-server-process');
const serverAddress = config.server.address;

const policy: BootPolicy = {
  async resolve(client: BootClient): Promise<BootDecision | null> {
    if (input.ignore?.includes(client.mac)) return null;
    const address = input.reservations?.[client.mac];
    const bootFile = client.isIpxe
      ? `http://${serverAddress}:8080/boot/${client.mac.replace(/:/g, '-')}.ipxe`
      : (firmwareBootFile(client.arch, config.bootFiles, `http://${serverAddress}:8080`) ?? '');
    return { bootFile, nextServer: serverAddress, ...(address ? { address } : {}) };
  },
};

const metrics = new Metrics();
const server = new DhcpServer({
  config,
  serverAddress,
  dataDir: config.server.dataDir,
  policy,
  log: process.env.DD_DHCP_DEBUG === '1' ? createLogger({ level: 'debug' }) : silentLogger(),
  metrics,
  reservedAddresses: Object.values(input.reservations ?? {}),
});

const say = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify(o) + '\n');
let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await server.stop();
  say({ event: 'stopped' });
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'metrics') say({ event: 'metrics', text: metrics.render() });
  else if (line === 'stop') void stop();
});
await server.start();
say({ event: 'ready' });
