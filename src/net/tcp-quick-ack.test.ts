import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, Socket } from 'node:net';
import { once } from 'node:events';
import { quickAcker } from './tcp-quick-ack.js';

test('sets TCP_QUICKACK on a connected socket; a socket without a descriptor is a harmless no-op', async (t) => {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const accepted = once(server, 'connection');
  const port = (server.address() as { port: number }).port;
  const client = connect(port, '127.0.0.1');
  await once(client, 'connect');
  const [peer] = (await accepted) as [Socket];
  t.after(() => {
    client.destroy();
    peer.destroy();
  });
  const acknowledgeNow = quickAcker();
  assert.equal(acknowledgeNow(peer), true, 'the addon sets the option on the accepted socket');
  assert.equal(acknowledgeNow(client), true);
  assert.equal(acknowledgeNow(new Socket()), false, 'no descriptor yet');
  client.destroy();
  await once(client, 'close');
  assert.equal(acknowledgeNow(client), false, 'closed socket');
});
