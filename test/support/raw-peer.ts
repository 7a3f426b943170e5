/**
 * A raw-socket peer run inside another network namespace (`ip netns exec NS node
 * dist/test/support/raw-peer.js IFNAME ETHERTYPE`), driven by JSON lines on stdin, answering
 * JSON lines on stdout. Tests use it as the far end of a veth pair: it sends the frames they
 * ask for and records the frames it receives. Commands:
 *   {"op":"send","hex":"..."}                              → {"ok":true}
 *   {"op":"burst","hex":"...","count":N,"seqOffset":14}    → {"ok":true,"sent":N,"busy":B}
 *       N copies, a 32-bit sequence number written at seqOffset of each
 *   {"op":"received"}                                      → {"ok":true,"count":N,"frames":[hex of the first 64]}
 *   {"op":"clear"}                                         → {"ok":true}, forgets what was received
 *   {"op":"close"}                                         → {"ok":true} then exit
 * At start it prints {"ready":true,"mac":"..","ifindex":N}.
 */
import { createInterface } from 'node:readline';
import { isDisklessError } from '../../src/errors/index.js';
import { openRawSocket } from '../../src/net/open-raw-socket.js';

interface Command {
  readonly op: string;
  readonly hex?: string;
  readonly count?: number;
  readonly seqOffset?: number;
}

const [ifname, etherTypeText] = process.argv.slice(2);
if (!ifname || !etherTypeText) {
  process.stderr.write('usage: raw-peer IFNAME ETHERTYPE\n');
  process.exit(2);
}
const socket = openRawSocket({ ifname, etherType: Number(etherTypeText) });
let frames: string[] = [];
let count = 0;
socket.onFrame((frame) => {
  count++;
  if (frames.length < 64) frames.push(frame.toString('hex'));
});
const reply = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');
reply({ ready: true, mac: socket.mac.toString('hex'), ifindex: socket.ifindex });

/** Sends with a short back-off when the queue is full, counting how often it was. */
async function sendPaced(frame: Buffer): Promise<number> {
  for (let busy = 0; ; busy++) {
    try {
      socket.send(frame);
      return busy;
    } catch (err) {
      if (!isDisklessError(err, 'NET_SEND_BUSY') || busy > 100) throw err;
      await new Promise((r) => setTimeout(r, 1));
    }
  }
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  void (async () => {
    const cmd = JSON.parse(line) as Command;
    try {
      switch (cmd.op) {
        case 'send':
          socket.send(Buffer.from(cmd.hex ?? '', 'hex'));
          reply({ ok: true });
          break;
        case 'burst': {
          const template = Buffer.from(cmd.hex ?? '', 'hex');
          let busy = 0;
          for (let i = 0; i < (cmd.count ?? 0); i++) {
            const f = Buffer.from(template);
            f.writeUInt32BE(i, cmd.seqOffset ?? 14);
            busy += await sendPaced(f);
          }
          reply({ ok: true, sent: cmd.count ?? 0, busy });
          break;
        }
        case 'received':
          reply({ ok: true, count, frames });
          break;
        case 'clear':
          frames = [];
          count = 0;
          reply({ ok: true });
          break;
        case 'close':
          socket.close();
          reply({ ok: true });
          process.exit(0);
          break;
        default:
          reply({ ok: false, error: `unknown op ${cmd.op}` });
      }
    } catch (err) {
      reply({ ok: false, error: String(err), code: (err as { code?: string }).code });
    }
  })();
});
lines.on('close', () => {
  socket.close();
  process.exit(0);
});
