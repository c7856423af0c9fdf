import test, { type ExecutionContext } from 'ava';
import { once } from 'node:events';
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { pino } from 'pino';
import { request } from 'undici';
import { headEnd, parseRequestHead } from '../daemon/router/http1-head.js';
import { HttpExchange, INTERIM_MAX } from '../daemon/router/http-exchange.js';
import { InFlight } from '../daemon/router/in-flight.js';
import { UpstreamPools } from '../daemon/router/upstream-pools.js';
import { DEFAULT_TIMEOUT_MS, Route } from '../daemon/router/route-table.js';
import { checkAppRoute, ProtocolError } from '../daemon/router/router-protocol.js';
import { Router, type AccessEntry, type RouterOptions, type Upstream } from '../daemon/router/router.js';
import { CONTROL_PLANE_APP } from '../daemon/router/upstream.js';
import { upstream } from './support/upstreams.js';

// What a hostile or careless client or app can make the router hold: answers a client never reads,
// endless interim answers, connections by the thousand, an app that never answers. Real sockets
// on loopback, the router in this process.

const silent = pino({ level: 'silent' });

async function start(t: ExecutionContext, opts: Partial<RouterOptions> = {}): Promise<{ router: Router; port: number }> {
  const router = new Router({ bind: '127.0.0.1', port: 0, logger: silent, ...opts });
  const port = await router.start();
  t.teardown(() => router.stop());
  return { router, port };
}

async function open(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

/** Resolves once `check` holds, polling; fails the wait past a generous overall bound. */
async function until(check: () => boolean, what: string, boundMs = 60_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Reads what comes back on `socket` until `done` says it is all there, or the socket closes. */
function collect(socket: Socket, done: (text: string) => boolean): Promise<string> {
  let text = '';
  return new Promise((resolve) => {
    const onData = (c: Buffer): void => {
      text += c.toString('latin1');
      if (done(text)) {
        socket.off('data', onData);
        resolve(text);
      }
    };
    socket.on('data', onData);
    socket.once('close', () => resolve(text));
  });
}

const statusLines = (text: string, status: number): number => text.split(`HTTP/1.1 ${status} `).length - 1;

test('a client that pipelines requests and never reads is read no further than the answers it has taken', async (t) => {
  const answer = 'x'.repeat(16 * 1024);
  let served = 0;
  const app = await upstream(t, (_req, res) => {
    served += 1;
    res.end(answer);
  });
  const { router, port } = await start(t);
  router.setApp('app', ['app.test'], [app]);
  // Mostly requests for a host nobody serves (the router's own 404s), every 50th for the app, so
  // the app's count shows how far the router has read: 50 MB of answers in all, far more than
  // the sockets' buffers hold.
  const total = 100_000;
  const toApp = total / 50;
  const parts: string[] = [];
  for (let i = 1; i <= total; i++) parts.push(i % 50 === 0 ? `GET /${i} HTTP/1.1\r\nHost: app.test\r\n\r\n` : 'GET / HTTP/1.1\r\nHost: nobody.test\r\n\r\n');
  const socket = await open(port);
  t.teardown(() => socket.destroy());
  socket.pause();
  socket.write(parts.join(''));

  // Wait for the router to stop reading: the app's count stands still.
  let last = -1;
  let still = 0;
  await until(() => {
    if (served > 0 && served === last) still += 1;
    else still = 0;
    last = served;
    return still >= 10 || served === toApp;
  }, 'the router to stop reading');
  t.true(served < toApp / 2, `the router read on for a client that reads nothing (${served} of ${toApp} app requests served)`);

  // The client reads at last: every answer comes.
  let tail = '';
  let answers = 0;
  socket.on('data', (c: Buffer) => {
    // Only status lines hold "HTTP/1.1 " (9 bytes); a chunk may split one, so a short tail is kept.
    const text = tail + c.toString('latin1');
    let at = text.indexOf('HTTP/1.1 ');
    let after = 0;
    for (; at !== -1; at = text.indexOf('HTTP/1.1 ', after)) {
      answers += 1;
      after = at + 9;
    }
    tail = text.slice(Math.max(after, text.length - 8));
  });
  socket.resume();
  await until(() => answers === total, `every answer (${answers} of ${total})`, 120_000);
  t.is(served, toApp);
});

test('an exchange whose request is all read leaves the client paused when its app connection opens', async (t) => {
  // The pipelined bytes behind a request are the connection's to hold back; an exchange that
  // resumed the client on each new app connection let them in without bound (an app closing
  // after every answer, or failing every one, makes a new connection per request).
  let heard = false;
  const app = createTcpServer((s) => {
    s.on('error', () => {});
    s.once('data', () => (heard = true));
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  t.teardown(() => app.close());
  const front = createTcpServer();
  front.listen(0, '127.0.0.1');
  await once(front, 'listening');
  t.teardown(() => front.close());
  const accepted = once(front, 'connection') as Promise<[Socket]>;
  const client = connect((front.address() as AddressInfo).port, '127.0.0.1');
  client.on('error', () => {});
  t.teardown(() => client.destroy());
  const [routerSide] = await accepted;
  routerSide.on('error', () => {});
  t.teardown(() => routerSide.destroy());

  const upstreamApp = { host: '127.0.0.1', port: (app.address() as AddressInfo).port };
  const route = new Route('app', ['app.test'], [upstreamApp]);
  const pools = new UpstreamPools();
  t.teardown(() => pools.destroyAll());
  const bytes = Buffer.from('GET / HTTP/1.1\r\nHost: app.test\r\n\r\n');
  const req = parseRequestHead(bytes, headEnd(bytes, 'request'));
  const owner = { surplus: () => {}, exchangeEnded: () => {} };
  const exchange = new HttpExchange({ pools, inFlight: new InFlight(), logger: silent, currentRoute: () => route }, routerSide, req, route, false, owner);
  t.teardown(() => exchange.abort());
  routerSide.pause();
  exchange.start(upstreamApp, undefined);
  await until(() => heard, 'the app to get the request');
  t.true(routerSide.isPaused());
});

/** A raw app: for each request head it reads, `answer` writes what it likes. */
async function rawApp(t: ExecutionContext, answer: (socket: Socket, head: string) => void): Promise<Upstream> {
  const server = createTcpServer((socket) => {
    socket.on('error', () => {});
    let buf = '';
    socket.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end !== -1; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        answer(socket, head);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  return { host: '127.0.0.1', port: (server.address() as AddressInfo).port };
}

const EARLY_HINTS = 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n';

test(`an app's interim answers pass on up to ${INTERIM_MAX} per request, one more is a 502 that ends the client's connection; none go to an HTTP/1.0 client`, async (t) => {
  const seen: string[] = [];
  const app = await rawApp(t, (socket, head) => {
    seen.push(head.split(' ')[1]!);
    const hints = head.startsWith('GET /flood') ? 1000 : INTERIM_MAX;
    socket.write(EARLY_HINTS.repeat(hints));
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  });
  const { router, port } = await start(t);
  router.setApp('hints', ['hints.test'], [app]);

  const socket = await open(port);
  t.teardown(() => socket.destroy());
  // A request pipelined behind the flooded one: the connection ends with the 502 instead, so a
  // client cannot make the router open an app connection per request it pipelines.
  const closed = once(socket, 'close');
  const flooded = collect(socket, () => false);
  socket.write('GET /flood HTTP/1.1\r\nHost: hints.test\r\n\r\nGET /after HTTP/1.1\r\nHost: hints.test\r\n\r\n');
  const text = await flooded;
  await closed;
  t.is(statusLines(text, 103), INTERIM_MAX);
  t.is(statusLines(text, 502), 1);
  t.regex(text, /\r\nConnection: close\r\n/i);
  t.deepEqual(seen, ['/flood']);
  // An app within the cap is relayed whole.
  const next = await open(port);
  t.teardown(() => next.destroy());
  const fine = collect(next, (s) => s.endsWith('ok'));
  next.write('GET /fine HTTP/1.1\r\nHost: hints.test\r\n\r\n');
  const fineText = await fine;
  t.is(statusLines(fineText, 103), INTERIM_MAX);
  t.is(statusLines(fineText, 200), 1);

  const old = await open(port);
  t.teardown(() => old.destroy());
  const oldText = collect(old, (s) => s.endsWith('ok'));
  old.write('GET / HTTP/1.0\r\nHost: hints.test\r\n\r\n');
  const answer = await oldText;
  t.regex(answer, /^HTTP\/1\.1 200 OK\r\n/);
  t.is(statusLines(answer, 103), 0);
});

test('connections over the cap per address get a short 503 and are closed; the refusals are logged once', async (t) => {
  const lines: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
  const app = await upstream(t, (_req, res) => res.end('ok'));
  const { router, port } = await start(t, { logger, maxConnectionsPerAddress: 2 });
  router.setApp('app', ['app.test'], [app]);
  const ask = async (socket: Socket): Promise<string> => {
    const text = collect(socket, (s) => s.endsWith('ok') || s.endsWith('\n'));
    socket.write('GET / HTTP/1.1\r\nHost: app.test\r\n\r\n');
    return text;
  };
  const first = await open(port);
  const second = await open(port);
  t.teardown(() => {
    first.destroy();
    second.destroy();
  });
  t.regex(await ask(first), /^HTTP\/1\.1 200 /);
  t.regex(await ask(second), /^HTTP\/1\.1 200 /);

  for (let i = 0; i < 4; i++) {
    const over = await open(port);
    const text = await collect(over, () => false);
    t.regex(text, /^HTTP\/1\.1 503 /);
    t.regex(text, /\r\nConnection: close\r\n/);
    t.regex(text, /\r\nX-Content-Type-Options: nosniff\r\n/);
    t.true(over.destroyed || over.readableEnded);
    over.destroy();
  }
  t.is(lines.filter((l) => l.includes('over the cap')).length, 1);

  // A connection that closes makes room.
  first.destroy();
  let text = '';
  const deadline = Date.now() + 60_000;
  await (async function retry(): Promise<void> {
    while (Date.now() < deadline) {
      const socket = await open(port);
      text = await ask(socket);
      socket.destroy();
      if (!text.startsWith('HTTP/1.1 503')) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  t.regex(text, /^HTTP\/1\.1 200 /);
});

test('connections over the cap in all are refused whatever their address', async (t) => {
  const app = await upstream(t, (_req, res) => res.end('ok'));
  const { router, port } = await start(t, { maxConnections: 1 });
  router.setApp('app', ['app.test'], [app]);
  const first = await open(port);
  t.teardown(() => first.destroy());
  const answer = collect(first, (s) => s.endsWith('ok'));
  first.write('GET / HTTP/1.1\r\nHost: app.test\r\n\r\n');
  t.regex(await answer, /^HTTP\/1\.1 200 /);
  const over = await open(port);
  t.regex(await collect(over, () => false), /^HTTP\/1\.1 503 /);
});

test('an app that does not start its answer in its timeout: the client gets 504, the app loses the connection; started answers and tunnels are not cut', async (t) => {
  let finishStream: (() => void) | undefined;
  let appSawClose: () => void = () => {};
  const closed = new Promise<void>((r) => (appSawClose = r));
  const app = await upstream(t, (req, res) => {
    if (req.url === '/silent') {
      req.socket.once('close', () => appSawClose());
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('a');
    finishStream = () => res.end('b');
  });
  const tunnels = await rawApp(t, (socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    socket.removeAllListeners('data');
    socket.on('data', (c: Buffer) => socket.write(c));
  });
  const access: AccessEntry[] = [];
  const { router, port } = await start(t, { onAccess: (entry) => access.push(entry) });
  router.setApp('slow', ['slow.test'], [app], undefined, 1000);
  router.setApp('ws', ['ws.test'], [tunnels], undefined, 1000);

  const tunnel = await open(port);
  t.teardown(() => tunnel.destroy());
  tunnel.write('GET / HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
  t.regex(await collect(tunnel, (s) => s.includes('\r\n\r\n')), /^HTTP\/1\.1 101 /);

  const streaming = await request(`http://127.0.0.1:${port}/stream`, { headers: { host: 'slow.test' } });
  t.is(streaming.statusCode, 200);
  const res = await request(`http://127.0.0.1:${port}/silent`, { headers: { host: 'slow.test' } });
  t.is(res.statusCode, 504);
  t.is((await res.body.text()).trim(), 'Gateway timeout: app slow did not answer in 1 s');
  await closed;
  t.is(access.find((e) => e.path === '/silent')?.status, 504);

  // Past the timeout, the answer that had started finishes and the tunnel still carries bytes.
  (finishStream as () => void)();
  t.is(await streaming.body.text(), 'ab');
  const echoed = collect(tunnel, (s) => s.includes('ping'));
  tunnel.write('ping');
  t.regex(await echoed, /ping/);
});

test('an app answer timeout is 30 s unless set, none for rack itself, and the protocol takes 1 s to an hour', (t) => {
  t.is(new Route('a', [], []).timeoutMs, DEFAULT_TIMEOUT_MS);
  t.is(DEFAULT_TIMEOUT_MS, 30_000);
  t.is(new Route('a', [], [], undefined, 5000).timeoutMs, 5000);
  t.is(new Route(CONTROL_PLANE_APP, [], [], undefined, 5000).timeoutMs, 0);
  const route = { app: 'a', hosts: [], upstreams: [] };
  t.is(checkAppRoute({ ...route, timeoutMs: 1000 }).timeoutMs, 1000);
  t.is(checkAppRoute(route).timeoutMs, undefined);
  for (const timeoutMs of [999, 3_600_001, 1500.5, '30000']) t.throws(() => checkAppRoute({ ...route, timeoutMs }), { instanceOf: ProtocolError });
});
