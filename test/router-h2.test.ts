import test, { type ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import http2, { type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { H2_MAX_STREAMS } from '../daemon/router/h2-session.js';
import { Router, type AccessEntry } from '../daemon/router/router.js';
import type { Upstream } from '../daemon/router/upstream.js';
import { FRAME, RawH2 } from './support/h2-frames.js';
import { TestCa, type Pem } from './support/test-certs.js';

// HTTP/2 on the router's TLS listener, against real node servers on loopback: node's http2 client
// where it will send the shape, raw frames (support/h2-frames.ts) where it will not.

const logger = pino({ level: 'silent' });
let ca: TestCa;
test.before(async () => {
  ca = await TestCa.create();
});

interface Seen {
  method: string;
  url: string;
  httpVersion: string;
  headers: IncomingHttpHeaders;
}

/** A node app on loopback that records what reached it and how many connections it was given. */
async function app(t: ExecutionContext, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ upstream: Upstream; seen: Seen[]; connections: () => number }> {
  const seen: Seen[] = [];
  let connections = 0;
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', httpVersion: req.httpVersion, headers: req.headers });
    handler(req, res);
  });
  server.on('connection', () => (connections += 1));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { upstream: { host: '127.0.0.1', port: (server.address() as AddressInfo).port }, seen, connections: () => connections };
}

const says = (text: string) => (_req: IncomingMessage, res: ServerResponse) => res.end(text);

async function router(t: ExecutionContext, opts: { onAccess?: (e: AccessEntry) => void } = {}): Promise<{ router: Router; https: number; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'rack-router-h2-'));
  const r = new Router({ bind: '127.0.0.1', port: 0, https: { port: 0, certDir: dir }, logger, ...opts });
  await r.start();
  t.teardown(async () => {
    await r.stop();
    await rm(dir, { recursive: true, force: true });
  });
  return { router: r, https: r.httpsPort, dir };
}

/** One certificate for all `hosts`, a file per host as rackd writes them, then a reload. */
async function certify(r: Router, dir: string, hosts: string[]): Promise<Pem> {
  const pem = await ca.leaf({ names: hosts });
  for (const host of hosts) await writeFile(join(dir, `${host}.pem`), pem.cert + ca.ca.cert + pem.key, { mode: 0o600 });
  await r.reloadCertificates();
  return pem;
}

/** node's HTTP/2 client over a TLS connection to the router, SNI `servername`, the test CA trusted. */
async function h2(t: ExecutionContext, port: number, servername: string): Promise<ClientHttp2Session> {
  let socket: TLSSocket | undefined;
  const session = http2.connect(`https://${servername}:${port}`, {
    createConnection: () => (socket = connect({ host: '127.0.0.1', port, servername, ca: ca.ca.cert, ALPNProtocols: ['h2', 'http/1.1'] })),
  });
  session.on('error', () => {});
  t.teardown(() => session.destroy());
  await once(session, 'connect');
  t.is(socket?.alpnProtocol, 'h2');
  return session;
}

interface H2Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/** One stream: `headers` (a GET to / unless they say), `body` if any; resolves with the whole answer. */
function ask(session: ClientHttp2Session, headers: OutgoingHttpHeaders = {}, body?: Buffer | string): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': '/', ...headers }, { endStream: body === undefined });
    let answer: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (answer = h));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status: Number(answer[':status']), headers: answer, body: Buffer.concat(chunks) }));
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

/** Polls `check` until it holds; a generous bound so a busy machine is never mistaken for a failure. */
async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a client offering h2 gets HTTP/2: streams are routed by :authority, and the app gets HTTP/1.1 with the forward headers over one kept connection', async (t) => {
  const { router: r, https, dir } = await router(t);
  const shop = await app(t, (req, res) => {
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.setHeader('connection', 'x-secret');
    res.setHeader('x-secret', 'hop');
    res.setHeader('x-app', 'shop');
    res.end(`shop ${req.url ?? ''}`);
  });
  const blog = await app(t, says('blog'));
  r.setApp('shop', ['shop.test'], [shop.upstream], { redirect: false, hsts: true });
  r.setApp('blog', ['blog.test'], [blog.upstream]);
  await certify(r, dir, ['shop.test', 'blog.test']);

  const session = await h2(t, https, 'shop.test');
  const first = await ask(session, { ':path': '/a?b=c', cookie: ['x=1', 'y=2'], te: 'trailers', 'x-forwarded-proto': 'http', 'x-forwarded-for': '10.0.0.9' });
  t.is(first.status, 200);
  t.is(first.body.toString(), 'shop /a?b=c');
  t.deepEqual(first.headers['set-cookie'], ['a=1', 'b=2']);
  t.is(first.headers['x-app'], 'shop');
  t.is(first.headers['x-secret'], undefined, 'a field the app named in Connection stays between it and the router');
  t.is(first.headers['strict-transport-security'], 'max-age=31536000');
  // The same connection carries another host its certificate covers.
  const other = await ask(session, { ':authority': `blog.test:${https}` });
  t.is(other.body.toString(), 'blog');
  t.is(other.headers['strict-transport-security'], undefined);

  const seen = shop.seen[0] as Seen;
  t.is(seen.httpVersion, '1.1');
  t.is(seen.method, 'GET');
  t.is(seen.url, '/a?b=c');
  t.is(seen.headers.host, `shop.test:${https}`);
  t.is(seen.headers.cookie, 'x=1; y=2', 'cookie fields joined as RFC 9113 §8.2.3 says');
  t.is(seen.headers['x-forwarded-proto'], 'https');
  t.is(seen.headers['x-forwarded-for'], '10.0.0.9, 127.0.0.1');
  t.is(seen.headers['x-forwarded-port'], String(https));
  t.is(seen.headers['x-forwarded-host'], `shop.test:${https}`);
  t.regex(String(seen.headers['x-request-start']), /^\d{13}$/);
  t.is(seen.headers.te, undefined);
  t.false(Object.keys(seen.headers).some((name) => name.startsWith(':')), 'no pseudo-header goes upstream');

  // Streams share the app's keep-alive connections: ten in a row, one connection.
  for (let i = 0; i < 10; i++) t.is((await ask(session, { ':path': `/n${i}` })).status, 200);
  t.is(shop.connections(), 1);
});

test(`${H2_MAX_STREAMS} streams in flight at once, twice over: the second round reuses the app connections of the first`, async (t) => {
  const { router: r, https, dir } = await router(t);
  const held: ServerResponse[] = [];
  const busy = await app(t, (_req, res) => {
    held.push(res);
    // Every request of the round in flight at once, each on an app connection of its own.
    if (held.length === H2_MAX_STREAMS) for (const each of held.splice(0)) each.end('ok');
  });
  r.setApp('shop', ['shop.test'], [busy.upstream]);
  await certify(r, dir, ['shop.test']);
  const session = await h2(t, https, 'shop.test');
  for (let round = 0; round < 2; round++) {
    const answers = await Promise.all(Array.from({ length: H2_MAX_STREAMS }, (_, i) => ask(session, { ':path': `/${round}/${i}` })));
    t.true(answers.every((a) => a.status === 200));
  }
  t.is(busy.seen.length, 2 * H2_MAX_STREAMS);
  t.is(busy.connections(), H2_MAX_STREAMS);
});

test('a request body streams to the app as it comes, chunked without a length; 5 MB with a length goes both ways intact', async (t) => {
  const { router: r, https, dir } = await router(t);
  const received: Buffer[] = [];
  const echo = await app(t, (req, res) => {
    req.on('data', (c: Buffer) => received.push(c));
    req.pipe(res);
  });
  r.setApp('shop', ['shop.test'], [echo.upstream]);
  await certify(r, dir, ['shop.test']);
  const session = await h2(t, https, 'shop.test');

  const stream = session.request({ ':path': '/up', ':method': 'POST' });
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  const ended = once(stream, 'end');
  stream.write('first part;');
  // The app has the first part while the client has not sent the rest.
  await until('the first part at the app', () => Buffer.concat(received).toString() === 'first part;');
  stream.end('second part');
  await ended;
  t.is(Buffer.concat(chunks).toString(), 'first part;second part');
  t.is(echo.seen[0]?.headers['transfer-encoding'], 'chunked');
  t.is(echo.seen[0]?.headers['content-length'], undefined);

  const big = Buffer.alloc(5 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i);
  const answer = await ask(session, { ':path': '/big', ':method': 'PUT', 'content-length': big.length }, big);
  t.is(answer.status, 200);
  t.is(answer.body.length, big.length);
  t.is(createHash('sha256').update(answer.body).digest('hex'), createHash('sha256').update(big).digest('hex'));
  t.is(echo.seen[1]?.headers['content-length'], String(big.length));

  // An empty POST says its length, as HTTP/1.1 clients do (some servers want it).
  t.is((await ask(session, { ':path': '/empty', ':method': 'POST' })).status, 200);
  t.is(echo.seen[2]?.headers['content-length'], '0');
});

test('an event stream reaches the client event by event, before the app has finished', async (t) => {
  const { router: r, https, dir } = await router(t);
  let next: (() => void) | undefined;
  const events = await app(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write('data: one\n\n');
    next = () => res.end('data: two\n\n');
  });
  r.setApp('shop', ['shop.test'], [events.upstream]);
  await certify(r, dir, ['shop.test']);
  const session = await h2(t, https, 'shop.test');
  const stream = session.request({ ':path': '/events' });
  let text = '';
  stream.setEncoding('utf8');
  stream.on('data', (c: string) => (text += c));
  const ended = once(stream, 'end');
  await until('the first event', () => text === 'data: one\n\n');
  t.not(next, undefined);
  next?.();
  await ended;
  t.is(text, 'data: one\n\ndata: two\n\n');
});

test("rack's own answers over h2: 404 unknown host, 421 another certificate's host, 503 nothing running, 502 app down, 504 app too slow", async (t) => {
  const { router: r, https, dir } = await router(t);
  const silent = await app(t, () => {});
  const down = await app(t, says('never'));
  r.setApp('shop', ['shop.test'], [(await app(t, says('shop'))).upstream]);
  r.setApp('idle', ['idle.test'], []);
  r.setApp('down', ['down.test'], [{ host: '127.0.0.1', port: 1 }]);
  r.setApp('slow', ['slow.test'], [silent.upstream], undefined, 1000);
  await certify(r, dir, ['shop.test', 'idle.test', 'down.test', 'slow.test', 'ghost.test']);
  await certify(r, dir, ['other.test']);

  const session = await h2(t, https, 'shop.test');
  const expect = async (authority: string, status: number, text: RegExp): Promise<void> => {
    const answer = await ask(session, { ':authority': authority });
    t.is(answer.status, status, authority);
    t.regex(answer.body.toString(), text, authority);
    t.is(answer.headers['content-type'], 'text/plain; charset=utf-8');
    t.is(answer.headers['cache-control'], 'no-store');
    t.is(answer.headers['x-content-type-options'], 'nosniff');
  };
  await expect('ghost.test', 404, /^No app is served at this address\n$/);
  await expect('other.test', 421, /^Misdirected request/);
  await expect('idle.test', 503, /No web processes are running for app idle/);
  await expect('down.test', 502, /Bad gateway: app down did not answer/);
  await expect('slow.test', 504, /Gateway timeout: app slow did not answer in 1 s/);
  t.is(silent.seen.length, 1);
  t.is(down.seen.length, 0);
  // The connection goes on after all of them.
  t.is((await ask(session, { ':authority': 'shop.test' })).status, 200);
});

test(`limits: ${H2_MAX_STREAMS} streams at once per connection (a client opening one more loses the connection); a header list over 16 KiB is refused and reaches no app`, async (t) => {
  const { router: r, https, dir } = await router(t);
  const held: ServerResponse[] = [];
  const slow = await app(t, (_req, res) => held.push(res));
  r.setApp('shop', ['shop.test'], [slow.upstream]);
  await certify(r, dir, ['shop.test']);

  const session = await h2(t, https, 'shop.test');
  t.is(session.remoteSettings.maxConcurrentStreams, H2_MAX_STREAMS);
  // Over the bound: once the client has acknowledged the SETTINGS, node's nghttp2 binding resets the
  // stream (ENHANCE_YOUR_CALM) before the router sees it; before that, the router's own check says 431.
  for (let i = 0; i < 2; i++) {
    const big = session.request({ ':path': '/big', 'x-big': 'x'.repeat(17 * 1024) });
    let status = 0;
    big.on('response', (h) => (status = Number(h[':status'])));
    big.on('error', () => {});
    big.resume();
    await new Promise((resolve) => big.on('close', resolve));
    t.true(status === 431 || big.rstCode === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, `status ${status}, reset ${big.rstCode}`);
  }
  t.is(slow.seen.length, 0);

  // Raw frames: node's client would queue the extra stream rather than send it.
  const raw = await RawH2.open(https, 'shop.test', ca.ca.cert);
  t.teardown(() => raw.close());
  await raw.waitFor('the server SETTINGS', (f) => f.type === FRAME.SETTINGS);
  const base = [[':method', 'GET'], [':scheme', 'https'], [':path', '/'], [':authority', 'shop.test']] as const;
  for (let i = 0; i < H2_MAX_STREAMS; i++) raw.headers(1 + 2 * i, base, true);
  await until(`${H2_MAX_STREAMS} requests at the app`, () => slow.seen.length === H2_MAX_STREAMS);
  const extra = 1 + 2 * H2_MAX_STREAMS;
  raw.headers(extra, base, true);
  // RFC 9113 §5.1.2 allows a stream error; nghttp2 ends the connection of a client that ignored the setting.
  t.regex(await raw.outcome(extra), /^(rst:7|rst:1|goaway:1|closed)$/);
  for (const res of held) res.end('ok');
  t.is(slow.seen.length, H2_MAX_STREAMS);
});

test('each stream is summed for metrics and, where asked, has an access line marked HTTP/2', async (t) => {
  const entries: AccessEntry[] = [];
  const { router: r, https, dir } = await router(t, { onAccess: (e) => entries.push(e) });
  r.setApp('shop', ['shop.test'], [(await app(t, says('shop'))).upstream]);
  r.setApp('idle', ['idle.test'], []);
  await certify(r, dir, ['shop.test', 'idle.test']);
  const session = await h2(t, https, 'shop.test');
  t.is((await ask(session, { ':path': '/one?x=1' })).status, 200);
  t.is((await ask(session, { ':path': '/two', ':method': 'POST' }, 'body')).status, 200);
  t.is((await ask(session, { ':authority': 'idle.test' })).status, 503);
  await until('three access lines', () => entries.length === 3);
  t.like(entries[0], { app: 'shop', method: 'GET', path: '/one?x=1', host: 'shop.test', status: 200, ip: '127.0.0.1', protocol: 'HTTP/2' });
  t.like(entries[1], { app: 'shop', method: 'POST', path: '/two', status: 200, protocol: 'HTTP/2' });
  t.like(entries[2], { app: 'idle', status: 503, protocol: 'HTTP/2' });
  const routes = r.summaries.closeAll().flatMap((b) => b.routes);
  const shop = routes.filter((s) => s.app === 'shop');
  t.deepEqual(shop.map((s) => s.requests), [[0, 2, 0, 0, 0]]);
  t.true((shop[0]?.bytesIn ?? 0) > 4 && (shop[0]?.bytesOut ?? 0) > 8);
  t.deepEqual(routes.find((s) => s.app === 'idle')?.requests, [0, 0, 0, 0, 1]);
});

test('a handoff sends GOAWAY: the stream under way finishes, no new stream is taken, then the connection closes', async (t) => {
  const { router: r, https, dir } = await router(t);
  let release: (() => void) | undefined;
  const slow = await app(t, (req, res) => {
    if (req.url === '/slow') release = () => res.end('finished');
    else res.end('quick');
  });
  r.setApp('shop', ['shop.test'], [slow.upstream]);
  await certify(r, dir, ['shop.test']);
  const session = await h2(t, https, 'shop.test');
  const slowAnswer = ask(session, { ':path': '/slow' });
  await until('the slow request at the app', () => release !== undefined);

  const goaway = once(session, 'goaway');
  const handedOff = r.handOff(30_000);
  const [code] = (await goaway) as [number];
  t.is(code, http2.constants.NGHTTP2_NO_ERROR);
  await t.throwsAsync(ask(session, { ':path': '/after' }));
  t.false(slow.seen.some((s) => s.url === '/after'));
  release?.();
  const answer = await slowAnswer;
  t.is(answer.status, 200);
  t.is(answer.body.toString(), 'finished');
  await handedOff;
  t.true(session.closed || session.destroyed);
});

test('stop() cuts h2 connections and their streams at once, and the app loses the request', async (t) => {
  const { router: r, https, dir } = await router(t);
  let aborted = false;
  const slow = await app(t, (req) => req.on('close', () => (aborted = true)));
  r.setApp('shop', ['shop.test'], [slow.upstream]);
  await certify(r, dir, ['shop.test']);
  const session = await h2(t, https, 'shop.test');
  const answer = ask(session, { ':path': '/slow' });
  await until('the request at the app', () => slow.seen.length === 1);
  const closed = once(session, 'close');
  await r.stop();
  // The connection is gone under it: the stream ends in an error or with no answer at all.
  const cut = await answer.catch(() => undefined);
  t.true(cut === undefined || Number.isNaN(cut.status));
  await closed;
  await until('the app request closed', () => aborted);
  t.true(aborted);
});

test('HTTP/1.1 over TLS is as before: a client offering only http/1.1, or no ALPN, is served HTTP/1.1, and an Upgrade tunnels', async (t) => {
  const { router: r, https, dir } = await router(t);
  const echo = http.createServer((_req, res) => res.end('h1'));
  echo.on('upgrade', (_req, socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.pipe(socket);
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  t.teardown(() => {
    echo.closeAllConnections();
    echo.close();
  });
  r.setApp('shop', ['shop.test'], [{ host: '127.0.0.1', port: (echo.address() as AddressInfo).port }]);
  await certify(r, dir, ['shop.test']);

  for (const alpn of [['http/1.1'], undefined]) {
    const socket = connect({ host: '127.0.0.1', port: https, servername: 'shop.test', ca: ca.ca.cert, ...(alpn === undefined ? {} : { ALPNProtocols: alpn }) });
    t.teardown(() => socket.destroy());
    await once(socket, 'secureConnect');
    t.is(socket.alpnProtocol, alpn === undefined ? false : 'http/1.1');
    socket.write('GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n');
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    await once(socket, 'end');
    t.regex(text, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nh1$/);
  }

  const ws = connect({ host: '127.0.0.1', port: https, servername: 'shop.test', ca: ca.ca.cert, ALPNProtocols: ['http/1.1'] });
  t.teardown(() => ws.destroy());
  await once(ws, 'secureConnect');
  ws.write('GET /ws HTTP/1.1\r\nHost: shop.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  let received = '';
  ws.on('data', (c: Buffer) => {
    received += c.toString('latin1');
    if (received.endsWith('\r\n\r\n')) ws.write('ping');
  });
  await until('the echo through the tunnel', () => received.endsWith('ping'));
  t.regex(received, /^HTTP\/1\.1 101 /);
});

test('maintenance mode answers an h2 stream as it does HTTP/1.1: 503, Retry-After and the page, the app untouched', async (t) => {
  const { router: r, https, dir } = await router(t);
  let reached = 0;
  const shop = await app(t, (_req, res) => {
    reached += 1;
    res.end('shop');
  });
  r.setApp('shop', ['shop.test'], [shop.upstream], undefined, undefined, { page: '<h1>back soon</h1>' });
  await certify(r, dir, ['shop.test']);
  const session = await h2(t, https, 'shop.test');
  const down = await ask(session);
  t.is(down.status, 503);
  t.is(down.headers['retry-after'], '60');
  t.is(down.body.toString(), '<h1>back soon</h1>');
  t.is(reached, 0);
  r.setApp('shop', ['shop.test'], [shop.upstream]);
  const up = await ask(session);
  t.deepEqual([up.status, up.body.toString(), reached], [200, 'shop', 1]);
});
