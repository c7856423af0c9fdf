import test from 'ava';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { pino } from 'pino';
import { LoginThrottle } from '../daemon/access/login-throttle.js';
import { LoginGate } from '../daemon/ssh/login-gate.js';

// The gate on its own, over real loopback sockets: a connection that has not finished its key
// exchange is closed at the key exchange's deadline, one that has keeps the rest of the grace time.

test('the key exchange has half the grace time; a finished one keeps the rest', async (t) => {
  const gate = new LoginGate({
    graceMs: 4000,
    maxStartups: { start: 10, rate: 100, full: 10 },
    perSourceMaxStartups: 10,
    throttle: new LoginThrottle({ failures: 10, windowMs: 60_000 }),
    logger: pino({ level: 'silent' }),
  });
  const admitted: Socket[] = [];
  const server = createServer((socket) => {
    if (gate.admit(socket)) admitted.push(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  const open = () => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    return { socket, closed: new Promise<void>((resolve) => socket.once('close', () => resolve())) };
  };
  try {
    const silent = open();
    const talking = open();
    const deadline = Date.now() + 30_000;
    while (admitted.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    // The server side of `talking` is the one whose peer port is talking's local port.
    const server2 = admitted.find((s) => s.remotePort === talking.socket.localPort)!;
    gate.handshaken(server2.remoteAddress, server2.remotePort);
    await silent.closed;
    t.false(talking.socket.destroyed, 'the connection past its key exchange is still open when the other is closed');
    await talking.closed; // and the grace time ends it too
  } finally {
    gate.closeAll();
    server.close();
  }
});
