import test, { type ExecutionContext } from 'ava';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Router } from '../daemon/router/router.js';
import { RawH2 } from './support/h2-frames.js';
import { TestCa } from './support/test-certs.js';

// HTTP/2 request shapes that could make the router and an app disagree about a request, sent as raw
// frames (node's client refuses to send most of them) over TLS with ALPN h2 to a real router. Each
// is refused, by nghttp2 (RST_STREAM PROTOCOL_ERROR, code 1) or by the router (400), and no app sees it.

const logger = pino({ level: 'silent' });
type Fields = ReadonlyArray<readonly [string, string]>;
const BASE: Fields = [[':method', 'POST'], [':scheme', 'https'], [':path', '/x'], [':authority', 'shop.test']];
const GET: Fields = [[':method', 'GET'], [':scheme', 'https'], [':path', '/'], [':authority', 'shop.test']];
const NGHTTP2 = 'rst:1';
const ROUTER = 'status:400';

interface Seen {
  url: string;
  headers: IncomingHttpHeaders;
  ended: boolean;
  aborted: boolean;
}

async function setUp(t: ExecutionContext): Promise<{ port: number; ca: TestCa; seen: Seen[] }> {
  const ca = await TestCa.create();
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const s: Seen = { url: req.url ?? '', headers: req.headers, ended: false, aborted: false };
    seen.push(s);
    req.resume();
    req.on('end', () => {
      s.ended = true;
      res.end('ok');
    });
    req.on('close', () => (s.aborted = !req.complete));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const dir = await mkdtemp(join(tmpdir(), 'rack-router-h2s-'));
  const r = new Router({ bind: '127.0.0.1', port: 0, https: { port: 0, certDir: dir }, logger });
  await r.start();
  t.teardown(async () => {
    await r.stop();
    server.closeAllConnections();
    server.close();
    await rm(dir, { recursive: true, force: true });
  });
  r.setApp('shop', ['shop.test', 'other.test'], [{ host: '127.0.0.1', port: (server.address() as AddressInfo).port }]);
  const pem = await ca.leaf({ names: ['shop.test', 'other.test'] });
  for (const host of ['shop.test', 'other.test']) await writeFile(join(dir, `${host}.pem`), pem.cert + ca.ca.cert + pem.key);
  await r.reloadCertificates();
  return { port: r.httpsPort, ca, seen };
}

/** Sends one shape on stream 1 of a fresh connection; answers how the stream ended. */
async function send(t: ExecutionContext, port: number, ca: TestCa, shape: (c: RawH2) => void): Promise<string> {
  const c = await RawH2.open(port, 'shop.test', ca.ca.cert);
  t.teardown(() => c.close());
  shape(c);
  return c.outcome(1);
}

const SHAPES: Array<[string, string, (c: RawH2) => void]> = [
  ['content-length above the DATA sent', NGHTTP2, (c) => (c.headers(1, [...BASE, ['content-length', '10']], false), c.data(1, '01234', true))],
  ['DATA beyond the content-length', NGHTTP2, (c) => (c.headers(1, [...BASE, ['content-length', '5']], false), c.data(1, '0123456789', true))],
  ['two different content-lengths', NGHTTP2, (c) => (c.headers(1, [...BASE, ['content-length', '5'], ['content-length', '6']], false), c.data(1, '01234', true))],
  ['a content-length with no body', NGHTTP2, (c) => c.headers(1, [...BASE, ['content-length', '5']], true)],
  ['transfer-encoding', NGHTTP2, (c) => (c.headers(1, [...BASE, ['transfer-encoding', 'chunked']], false), c.data(1, '0\r\n\r\n', true))],
  ['connection', NGHTTP2, (c) => c.headers(1, [...GET, ['connection', 'keep-alive']], true)],
  ['keep-alive', NGHTTP2, (c) => c.headers(1, [...GET, ['keep-alive', 'timeout=5']], true)],
  ['proxy-connection', NGHTTP2, (c) => c.headers(1, [...GET, ['proxy-connection', 'keep-alive']], true)],
  ['upgrade', NGHTTP2, (c) => c.headers(1, [...GET, ['upgrade', 'websocket']], true)],
  ['te other than trailers', NGHTTP2, (c) => c.headers(1, [...GET, ['te', 'gzip']], true)],
  ['a duplicate :path', NGHTTP2, (c) => c.headers(1, [...GET, [':path', '/admin']], true)],
  ['a duplicate :method', NGHTTP2, (c) => c.headers(1, [[':method', 'POST'], ...GET], true)],
  ['no :path', NGHTTP2, (c) => c.headers(1, GET.filter(([n]) => n !== ':path'), true)],
  ['no :method', NGHTTP2, (c) => c.headers(1, GET.filter(([n]) => n !== ':method'), true)],
  ['no :scheme', NGHTTP2, (c) => c.headers(1, GET.filter(([n]) => n !== ':scheme'), true)],
  ['no :authority nor host', NGHTTP2, (c) => c.headers(1, GET.filter(([n]) => n !== ':authority'), true)],
  ['an unknown pseudo-header', NGHTTP2, (c) => c.headers(1, [...GET, [':foo', 'x']], true)],
  ['a pseudo-header after a regular one', NGHTTP2, (c) => c.headers(1, [[':method', 'GET'], ['x-a', '1'], [':scheme', 'https'], [':path', '/'], [':authority', 'shop.test']], true)],
  [':status in a request', NGHTTP2, (c) => c.headers(1, [...GET, [':status', '200']], true)],
  ['an empty :path', NGHTTP2, (c) => c.headers(1, GET.map(([n, v]) => [n, n === ':path' ? '' : v] as const), true)],
  ['a :path not starting with /', NGHTTP2, (c) => c.headers(1, GET.map(([n, v]) => [n, n === ':path' ? 'admin' : v] as const), true)],
  ['a header name in upper case', NGHTTP2, (c) => c.headers(1, [...GET, ['X-Upper', '1']], true)],
  ['CONNECT with a :path', NGHTTP2, (c) => c.headers(1, [[':method', 'CONNECT'], [':authority', 'shop.test:443'], [':path', '/']], true)],
  ['extended CONNECT (RFC 8441, not offered)', NGHTTP2, (c) => c.headers(1, [[':method', 'CONNECT'], [':protocol', 'websocket'], [':scheme', 'https'], [':path', '/'], [':authority', 'shop.test']], true)],
  ['CONNECT', ROUTER, (c) => c.headers(1, [[':method', 'CONNECT'], [':authority', 'shop.test:443']], true)],
  ['a host that disagrees with :authority', ROUTER, (c) => c.headers(1, [...GET, ['host', 'other.test']], true)],
  ['userinfo in :authority', ROUTER, (c) => c.headers(1, GET.map(([n, v]) => [n, n === ':authority' ? 'admin@shop.test' : v] as const), true)],
  [':scheme http on the TLS listener', ROUTER, (c) => c.headers(1, GET.map(([n, v]) => [n, n === ':scheme' ? 'http' : v] as const), true)],
];

test('h2 smuggling shapes are refused, each on its own connection, and no app sees any of them', async (t) => {
  const { port, ca, seen } = await setUp(t);
  for (const [what, expected, shape] of SHAPES) t.is(await send(t, port, ca, shape), expected, what);
  t.deepEqual(seen, []);
  // The raw client itself is sound: a plain request through it is served.
  t.is(await send(t, port, ca, (c) => c.headers(1, [...GET, ['host', 'shop.test']], true)), 'status:200');
  t.is(seen.length, 1);
});

test('a body that streams before its end is short of its content-length: the app never takes it as whole', async (t) => {
  const { port, ca, seen } = await setUp(t);
  const c = await RawH2.open(port, 'shop.test', ca.ca.cert);
  t.teardown(() => c.close());
  // Expect: 100-continue sends the head at once, so the app has the request before its body.
  c.headers(1, [...BASE, ['content-length', '10'], ['expect', '100-continue']], false);
  const deadline = Date.now() + 20_000;
  while (seen.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.is(seen.length, 1);
  t.is(await c.outcome(1), 'status:100');
  c.data(1, '01234', true);
  const end = await c.waitFor('the end of stream 1', (f) => f.type === 3 && f.stream === 1);
  t.is(end.payload.readUInt32BE(0), 1, 'RST_STREAM PROTOCOL_ERROR');
  while (!(seen[0]?.aborted ?? false) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.like(seen[0], { ended: false, aborted: true });
});

test('fields with invalid bytes never reach the app: node drops them before the router sees the stream', async (t) => {
  const { port, ca, seen } = await setUp(t);
  const fields: Fields = [['x y', '1'], ['x(y', '1'], ['x-lf', 'a\nb'], ['x-cr', 'a\rb'], ['x-nul', 'a\0b'], ['x-ctl', 'a\x01b'], ['x-blank', ' a ']];
  for (const field of fields) t.is(await send(t, port, ca, (c) => c.headers(1, [...GET, field], true)), 'status:200', field[0]);
  t.is(seen.length, fields.length);
  for (const s of seen) t.deepEqual(Object.keys(s.headers).filter((n) => n !== 'host' && !n.startsWith('x-forwarded-') && n !== 'x-request-start'), []);
});
