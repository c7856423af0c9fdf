import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { pino } from 'pino';
import { mayRetry } from '../daemon/router/retry-policy.js';
import { normalizeHost } from '../daemon/router/route-table.js';
import { Router, type Upstream } from '../daemon/router/router.js';

// Everything here talks over loopback only: real node servers as apps, the real router between.

const logger = pino({ level: 'silent' });

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface App {
  server: Server;
  upstream: Upstream;
  close: () => Promise<void>;
}

const opened: Array<() => Promise<void>> = [];
test.after.always(async () => {
  for (const close of opened.reverse()) await close();
});

async function app(handler: Handler): Promise<App> {
  const server = http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const close = async (): Promise<void> => {
    if (!server.listening) return;
    const closed = once(server, 'close');
    server.close();
    server.closeAllConnections();
    await closed;
  };
  opened.push(close);
  return { server, upstream: { host: '127.0.0.1', port }, close };
}

/** An app that answers with its name, so tests see which upstream served. */
const named = (name: string): Promise<App> => app((_req, res) => res.end(name));

async function router(): Promise<{ router: Router; port: number }> {
  const r = new Router({ bind: '127.0.0.1', port: 0, logger });
  const port = await r.start();
  opened.push(() => r.stop());
  return { router: r, port };
}

/** A port that nothing listens on: bind one, then release it. */
async function closedPort(): Promise<Upstream> {
  const a = await app(() => {});
  await a.close();
  return a.upstream;
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

function request(
  port: number,
  host: string,
  opts: { method?: string; path?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer; agent?: http.Agent } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'GET',
        path: opts.path ?? '/',
        headers: { host, ...opts.headers },
        agent: opts.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }),
        );
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

const text = async (port: number, host: string, path = '/'): Promise<string> =>
  (await request(port, host, { path })).body.toString();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('routes by Host header, ignoring case and port', async (t) => {
  const [a, b] = await Promise.all([named('a'), named('b')]);
  const { router: r, port } = await router();
  r.setApp('alpha', ['alpha.test', 'www.alpha.test'], [a.upstream]);
  r.setApp('beta', ['beta.test'], [b.upstream]);
  t.is(await text(port, 'alpha.test'), 'a');
  t.is(await text(port, 'ALPHA.Test:8080'), 'a');
  t.is(await text(port, 'www.alpha.test.'), 'a');
  t.is(await text(port, 'Beta.TEST:1'), 'b');
});

test('unknown host is a 404 from rack that does not echo the Host, never sniffed; an app with no upstreams is a 503', async (t) => {
  const { router: r, port } = await router();
  r.setApp('empty', ['empty.test'], []);
  const missing = await request(port, 'Nope.Test:9');
  t.is(missing.status, 404);
  t.regex(String(missing.headers['content-type']), /^text\/plain/);
  t.is(missing.body.toString().trim(), 'No app is served at this address');
  t.is(missing.headers['x-content-type-options'], 'nosniff');
  const empty = await request(port, 'empty.test');
  t.is(empty.status, 503);
  t.regex(String(empty.headers['content-type']), /^text\/plain/);
  t.regex(empty.body.toString(), /empty/);
  t.is(empty.headers['x-content-type-options'], 'nosniff');
});

test('removeApp stops routing its hosts', async (t) => {
  const a = await named('a');
  const { router: r, port } = await router();
  r.setApp('gone', ['gone.test'], [a.upstream]);
  t.is(await text(port, 'gone.test'), 'a');
  r.removeApp('gone');
  t.is((await request(port, 'gone.test')).status, 404);
});

test('upstream sees method, path, query, Host and X-Forwarded-*; hop-by-hop headers are dropped', async (t) => {
  let seen: IncomingMessage | undefined;
  const a = await app((req, res) => {
    seen = req;
    res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; Path=/']);
    res.setHeader('X-Custom', 'yes');
    res.setHeader('Keep-Alive', 'timeout=99');
    res.end('ok');
  });
  const { router: r, port } = await router();
  r.setApp('hdr', ['hdr.test'], [a.upstream]);
  const reply = await request(port, 'Hdr.test:4000', {
    method: 'DELETE',
    path: '/some/path?x=1&y=%20',
    headers: {
      'X-Forwarded-For': '10.0.0.1',
      'X-Forwarded-Proto': 'https',
      'X-Forwarded-Port': '9',
      'X-Request-Start': '1',
      'X-Trace': 'abc',
      Connection: 'keep-alive, X-Secret',
      'X-Secret': 'hop',
      'Proxy-Connection': 'keep-alive',
      TE: 'trailers',
    },
  });
  t.is(reply.status, 200);
  t.truthy(seen);
  const h = seen!.headers;
  t.is(seen!.method, 'DELETE');
  t.is(seen!.url, '/some/path?x=1&y=%20');
  t.is(h.host, 'Hdr.test:4000');
  t.is(h['x-forwarded-for'], '10.0.0.1, 127.0.0.1');
  t.is(h['x-forwarded-proto'], 'http');
  t.is(h['x-forwarded-host'], 'Hdr.test:4000');
  t.is(h['x-forwarded-port'], String(port), 'the port the client connected to');
  const start = Number(h['x-request-start']);
  t.true(Math.abs(Date.now() - start) < 60_000, `X-Request-Start ${h['x-request-start']} is ms since the epoch`);
  t.is(h['x-trace'], 'abc');
  t.is(h['x-secret'], undefined);
  t.is(h['proxy-connection'], undefined);
  t.is(h['te'], undefined);
  t.deepEqual(reply.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/']);
  t.is(reply.headers['x-custom'], 'yes');
  // The client's keep-alive terms are the router's own, not the app's.
  t.not(reply.headers['keep-alive'], 'timeout=99');
});

test('a 5 MB POST body streams through intact, both ways, chunked and with Content-Length', async (t) => {
  const a = await app((req, res) => {
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      hash.update(c);
      chunks.push(c);
    });
    req.on('end', () => {
      res.setHeader('X-Sha', hash.digest('hex'));
      res.setHeader('X-TE', req.headers['transfer-encoding'] ?? 'none');
      res.end(Buffer.concat(chunks));
    });
  });
  const { router: r, port } = await router();
  r.setApp('big', ['big.test'], [a.upstream]);
  const body = randomBytes(5 * 1024 * 1024);
  const sha = createHash('sha256').update(body).digest('hex');

  const sized = await request(port, 'big.test', { method: 'POST', body, headers: { 'Content-Length': body.length } });
  t.is(sized.status, 200);
  t.is(sized.headers['x-sha'], sha);
  t.is(sized.headers['x-te'], 'none');
  t.true(sized.body.equals(body));

  // A chunked upload: written in pieces with no length known up front.
  const chunked = await new Promise<Reply>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers: { host: 'big.test' }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    for (let off = 0; off < body.length; off += 256 * 1024) req.write(body.subarray(off, off + 256 * 1024));
    req.end();
  });
  t.is(chunked.status, 200);
  t.is(chunked.headers['x-sha'], sha);
  t.is(chunked.headers['x-te'], 'chunked');
  t.true(chunked.body.equals(body));
});

test('round robin across two upstreams', async (t) => {
  const [a, b] = await Promise.all([named('a'), named('b')]);
  const { router: r, port } = await router();
  r.setApp('rr', ['rr.test'], [a.upstream, b.upstream]);
  const answers: string[] = [];
  for (let i = 0; i < 6; i++) answers.push(await text(port, 'rr.test'));
  t.is(answers.filter((x) => x === 'a').length, 3);
  t.is(answers.filter((x) => x === 'b').length, 3);
  for (let i = 1; i < answers.length; i++) t.not(answers[i], answers[i - 1]);
});

test('a refused connection is retried once on the next upstream; with none left it is a 502', async (t) => {
  const b = await named('b');
  const dead = await closedPort();
  const { router: r, port } = await router();
  r.setApp('retry', ['retry.test'], [dead, b.upstream]);
  for (let i = 0; i < 4; i++) {
    const reply = await request(port, 'retry.test', { method: 'POST', body: Buffer.from('payload') });
    t.is(reply.status, 200);
    t.is(reply.body.toString(), 'b');
  }
  const dead2 = await closedPort();
  r.setApp('retry', ['retry.test'], [dead, dead2]);
  const bad = await request(port, 'retry.test');
  t.is(bad.status, 502);
  t.regex(String(bad.headers['content-type']), /^text\/plain/);
  t.is(r.inFlight(dead), 0);
  t.is(r.inFlight(dead2), 0);
});

/**
 * An app that closes a kept-alive connection when the second request arrives on it: the race of
 * an upstream's idle timeout firing just as the router reuses the pooled connection.
 */
async function closesReusedConnections(): Promise<Upstream> {
  const server = createTcpServer((socket: Socket) => {
    socket.on('error', () => {});
    let seen = '';
    socket.on('data', (d: Buffer) => {
      seen += d.toString('latin1');
      const heads = seen.split(' HTTP/1.1\r\n').length - 1;
      if (heads === 1 && seen.includes('\r\n\r\n')) {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nfirst');
      } else if (heads > 1) {
        socket.destroy();
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  opened.push(async () => {
    server.close();
    await sleep(0);
  });
  return { host: '127.0.0.1', port: (server.address() as AddressInfo).port };
}

test('a GET on a pooled connection the upstream just closed is retried; a POST is not', async (t) => {
  const flaky = await closesReusedConnections();
  const good = await named('good');
  const { router: r, port } = await router();
  r.setApp('race', ['race.test'], [flaky, good.upstream]);
  t.is(await text(port, 'race.test'), 'first'); // flaky, opens the pooled connection
  t.is(await text(port, 'race.test'), 'good');
  t.is(await text(port, 'race.test'), 'good'); // flaky reused and closed, retried on good

  r.setApp('race', ['race.test'], [good.upstream]);
  r.setApp('race', ['race.test'], [flaky, good.upstream]);
  t.is(await text(port, 'race.test'), 'first');
  t.is(await text(port, 'race.test'), 'good');
  const post = await request(port, 'race.test', { method: 'POST', body: Buffer.from('charge the card') });
  t.is(post.status, 502);
});

test('an upstream dying mid-answer cuts the client connection; the router keeps serving', async (t) => {
  const a = await app((req, res) => {
    if (req.url === '/die') {
      res.writeHead(200, { 'Content-Length': 100 });
      res.write('only part');
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    res.end('fine');
  });
  const { router: r, port } = await router();
  r.setApp('die', ['die.test'], [a.upstream]);
  await t.throwsAsync(request(port, 'die.test', { path: '/die' }));
  t.is(await text(port, 'die.test'), 'fine');
  t.true(await r.waitIdle([a.upstream], 2000));
});

test('headers the app names in its Connection header are not passed to the client', async (t) => {
  const a = await app((_req, res) => {
    res.setHeader('Connection', 'keep-alive, X-Hop-Only');
    res.setHeader('X-Hop-Only', 'secret');
    res.setHeader('X-Kept', 'yes');
    res.end('ok');
  });
  const { router: r, port } = await router();
  r.setApp('conn', ['conn.test'], [a.upstream]);
  const reply = await request(port, 'conn.test');
  t.is(reply.status, 200);
  t.is(reply.headers['x-hop-only'], undefined);
  t.is(reply.headers['x-kept'], 'yes');
  t.is(reply.body.toString(), 'ok');
});

test('a streamed answer reaches the client chunk by chunk, before the app has finished', async (t) => {
  let finish: (() => void) | undefined;
  const a = await app((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.write('first\n');
    finish = () => res.end('last\n');
  });
  const { router: r, port } = await router();
  r.setApp('stream', ['stream.test'], [a.upstream]);
  const req = http.request({ host: '127.0.0.1', port, path: '/', headers: { host: 'stream.test' }, agent: false });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  const [first] = (await once(res, 'data')) as [Buffer];
  t.is(first.toString(), 'first\n');
  t.truthy(finish, 'the app is still holding its answer open');
  const rest: Buffer[] = [];
  res.on('data', (c: Buffer) => rest.push(c));
  finish!();
  await once(res, 'end');
  t.is(Buffer.concat(rest).toString(), 'last\n');
});

test('a client that stops reading holds the upstream back (backpressure)', async (t) => {
  const total = 64 * 1024 * 1024;
  let written = 0;
  const a = await app((_req, res) => {
    const chunk = Buffer.alloc(64 * 1024, 120);
    res.writeHead(200, { 'Content-Length': total });
    const pump = (): void => {
      while (written < total) {
        written += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  });
  const { router: r, port } = await router();
  r.setApp('bp', ['bp.test'], [a.upstream]);
  const req = http.request({ host: '127.0.0.1', port, path: '/', headers: { host: 'bp.test' }, agent: false });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  res.pause();
  await sleep(300);
  const whilePaused = written;
  t.true(whilePaused < 24 * 1024 * 1024, `upstream wrote ${whilePaused} bytes to a client that reads nothing`);
  let received = 0;
  res.on('data', (c: Buffer) => (received += c.length));
  res.resume();
  await once(res, 'end');
  t.is(received, total);
});

test('setApp swaps upstreams for the very next request', async (t) => {
  const [a, b] = await Promise.all([named('a'), named('b')]);
  const { router: r, port } = await router();
  r.setApp('swap', ['swap.test'], [a.upstream]);
  t.is(await text(port, 'swap.test'), 'a');
  r.setApp('swap', ['swap.test', 'other.test'], [b.upstream]);
  t.is(await text(port, 'swap.test'), 'b');
  t.is(await text(port, 'other.test'), 'b');
  r.setApp('swap', ['other.test'], [b.upstream]);
  t.is((await request(port, 'swap.test')).status, 404);
});

test('waitIdle resolves only after a slow in-flight request finishes, and that request succeeds', async (t) => {
  let release: (() => void) | undefined;
  const slow = await app((_req, res) => {
    res.write('slow-');
    release = () => res.end('done');
  });
  const fresh = await named('fresh');
  const { router: r, port } = await router();
  r.setApp('drain', ['drain.test'], [slow.upstream]);

  const pending = request(port, 'drain.test');
  while (release === undefined) await sleep(5);
  t.is(r.inFlight(slow.upstream), 1);

  r.setApp('drain', ['drain.test'], [fresh.upstream]);
  t.is(await text(port, 'drain.test'), 'fresh');
  t.false(await r.waitIdle([slow.upstream], 50));

  let idle = false;
  const waiting = r.waitIdle([slow.upstream, fresh.upstream], 5000).then((v) => {
    idle = v;
    return v;
  });
  await sleep(100);
  t.false(idle);
  release();
  t.true(await waiting);
  const reply = await pending;
  t.is(reply.status, 200);
  t.is(reply.body.toString(), 'slow-done');
  t.is(r.inFlight(slow.upstream), 0);
  t.true(await r.waitIdle([slow.upstream], 0));
});

test('a client that goes away aborts the upstream request and frees the in-flight slot', async (t) => {
  let upstreamClosed: Promise<unknown> | undefined;
  const a = await app((req, res) => {
    upstreamClosed = once(res, 'close');
    res.write('partial');
  });
  const { router: r, port } = await router();
  r.setApp('abort', ['abort.test'], [a.upstream]);
  const req = http.request({ host: '127.0.0.1', port, path: '/', headers: { host: 'abort.test' }, agent: false });
  req.on('error', () => {});
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  await once(res, 'data');
  t.is(r.inFlight(a.upstream), 1);
  req.destroy();
  while (upstreamClosed === undefined) await sleep(5);
  await upstreamClosed;
  t.true(await r.waitIdle([a.upstream], 2000));
});

test('websocket-style upgrade is tunnelled both ways and counted in flight', async (t) => {
  const a = await app((_req, res) => res.end('plain'));
  let forwardedFor: string | undefined;
  a.server.on('upgrade', (req: IncomingMessage, socket, head: Buffer) => {
    forwardedFor = req.headers['x-forwarded-for'] as string | undefined;
    socket.on('error', () => {});
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
  });
  const dead = await closedPort();
  const { router: r, port } = await router();
  // The refused upstream first: the tunnel retries on the live one too.
  r.setApp('ws', ['ws.test'], [dead, a.upstream]);

  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write('GET /chat HTTP/1.1\r\nHost: WS.test:80\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
  let received = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (received += d));
  while (!received.includes('\r\n\r\n')) await sleep(5);
  t.regex(received, /^HTTP\/1\.1 101 /);
  t.is(forwardedFor, '127.0.0.1');
  t.is(r.inFlight(a.upstream), 1);

  received = '';
  socket.write('hello through the tunnel');
  while (received.length < 'hello through the tunnel'.length) await sleep(5);
  t.is(received, 'hello through the tunnel');

  socket.end();
  t.true(await r.waitIdle([a.upstream], 2000));
});

test('a tunnel whose client stops reading holds the app back: the router does not buffer what the app writes', async (t) => {
  const total = 64 * 1024 * 1024;
  let written = 0;
  const a = await app((_req, res) => res.end('plain'));
  a.server.on('upgrade', (_req: IncomingMessage, socket) => {
    socket.on('error', () => {});
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: stream\r\nConnection: Upgrade\r\n\r\n');
    const chunk = Buffer.alloc(64 * 1024, 120);
    const pump = (): void => {
      while (written < total) {
        written += chunk.length;
        if (!socket.write(chunk)) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end();
    };
    pump();
  });
  const { router: r, port } = await router();
  r.setApp('ws', ['ws.test'], [a.upstream]);
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write('GET /feed HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: stream\r\n\r\n');
  const [first] = (await once(socket, 'data')) as [Buffer];
  t.regex(first.toString('latin1'), /^HTTP\/1\.1 101 /);
  socket.pause();
  // The app writes until every buffer between it and the client is full, then waits on drain.
  let last = -1;
  while (written !== last) {
    last = written;
    await sleep(200);
  }
  t.true(written < 24 * 1024 * 1024, `the app wrote ${written} bytes to a client that reads nothing`);
  let received = first.length;
  socket.on('data', (c: Buffer) => (received += c.length));
  socket.resume();
  await once(socket, 'end');
  t.is(received - first.indexOf('\r\n\r\n') - 4, total);
  socket.destroy();
});

test('upgrade to an unknown host is a 404', async (t) => {
  const { port } = await router();
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write('GET / HTTP/1.1\r\nHost: nobody.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  let received = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (received += d));
  await once(socket, 'close');
  t.regex(received, /^HTTP\/1\.1 404 /);
  t.regex(received, /No app is served at this address/);
  t.notRegex(received, /nobody/);
});

test('a keep-alive client makes 100 sequential requests over one connection', async (t) => {
  const a = await app((req, res) => res.end(req.url));
  const { router: r, port } = await router();
  r.setApp('ka', ['ka.test'], [a.upstream]);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const sockets = new Set<unknown>();
  try {
    for (let i = 0; i < 100; i++) {
      const reply = await new Promise<string>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: `/n/${i}`, headers: { host: 'ka.test' }, agent }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => resolve(`${res.statusCode} ${body}`));
        });
        req.on('socket', (s) => sockets.add(s));
        req.on('error', reject);
        req.end();
      });
      t.is(reply, `200 /n/${i}`);
    }
  } finally {
    agent.destroy();
  }
  t.is(sockets.size, 1);
});

test('normalizeHost strips case, port and trailing dot', (t) => {
  t.is(normalizeHost('My.App.Test:8080'), 'my.app.test');
  t.is(normalizeHost('my.app.test.'), 'my.app.test');
  t.is(normalizeHost('[::1]:80'), '[::1]');
  t.is(normalizeHost(undefined), '');
});

test('retry policy: only requests that cannot have reached the app', (t) => {
  const refused = { method: 'POST', hasBody: true, connected: false, reused: false, responseStarted: false };
  t.true(mayRetry(refused));
  const reusedClosed = { method: 'GET', hasBody: false, connected: true, reused: true, responseStarted: false };
  t.true(mayRetry(reusedClosed));
  t.false(mayRetry({ ...reusedClosed, reused: false }));
  t.false(mayRetry({ ...reusedClosed, method: 'POST' }));
  t.false(mayRetry({ ...reusedClosed, hasBody: true }));
  t.false(mayRetry({ ...reusedClosed, responseStarted: true }));
});

test('stop() closes client connections, tunnels and upstream pools promptly', async (t) => {
  const a = await app((_req, res) => res.write('never ends'));
  a.server.on('upgrade', (_req: IncomingMessage, socket) => {
    socket.on('error', () => {});
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
    // node leaves upgraded sockets half-open; close ours when the router hangs up.
    socket.on('end', () => socket.end());
  });
  const r = new Router({ bind: '127.0.0.1', port: 0, logger });
  const port = await r.start();
  r.setApp('stop', ['stop.test'], [a.upstream]);

  const hanging = request(port, 'stop.test').then(
    () => 'answered',
    () => 'cut',
  );
  const tunnel = connect(port, '127.0.0.1');
  tunnel.on('error', () => {});
  await once(tunnel, 'connect');
  tunnel.write('GET / HTTP/1.1\r\nHost: stop.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
  await once(tunnel, 'data');
  while (r.inFlight(a.upstream) < 2) await sleep(5);

  const started = Date.now();
  await r.stop();
  t.true(Date.now() - started < 2000);
  t.is(await hanging, 'cut');
  if (!tunnel.closed) await once(tunnel, 'close');
  t.true(await r.waitIdle([a.upstream], 1000));
});
