import test, { type ExecutionContext } from 'ava';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { connect, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { Router } from '../daemon/router/router.js';
import { TestCa, type Pem } from './support/test-certs.js';
import { upstream } from './support/upstreams.js';

// The router's TLS side against real servers on loopback: SNI, reloads, redirects, HSTS, http-01.

const logger = pino({ level: 'silent' });
let ca: TestCa;
test.before(async () => {
  ca = await TestCa.create();
});

/** An app that says how it was reached, with two cookies (a header node must not fold). */
const echo = (t: ExecutionContext) =>
  upstream(t, (req, res) => {
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.end(JSON.stringify({ proto: req.headers['x-forwarded-proto'], url: req.url }));
  });

async function router(t: ExecutionContext): Promise<{ router: Router; http: number; https: number; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'rack-router-certs-'));
  const r = new Router({ bind: '127.0.0.1', port: 0, https: { port: 0, certDir: dir }, logger });
  const http = await r.start();
  t.teardown(async () => {
    await r.stop();
    await rm(dir, { recursive: true, force: true });
  });
  return { router: r, http, https: r.httpsPort, dir };
}

async function install(dir: string, host: string, pem: Pem): Promise<void> {
  await writeFile(join(dir, `${host}.pem`), pem.cert + ca.ca.cert + pem.key, { mode: 0o600 });
}

/** A TLS connection as a browser makes it: SNI, the CA trusted, the name checked. */
function tlsConnect(port: number, servername: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername, ca: ca.ca.cert });
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
}

async function get(url: string, host: string, opts: { method?: 'GET' | 'POST' } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const dispatcher = url.startsWith('https') ? new Agent({ connect: { ca: ca.ca.cert, servername: host } }) : undefined;
  try {
    const res = await request(url, { headers: { host }, ...(dispatcher ? { dispatcher } : {}), ...opts });
    return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
  } finally {
    await dispatcher?.close();
  }
}

test('serves each host its own certificate by SNI and tells the app the request was https', async (t) => {
  const { router: r, https, dir } = await router(t);
  r.setApp('shop', ['shop.test'], [await echo(t)]);
  r.setApp('blog', ['blog.test'], [await echo(t)]);
  const shop = await ca.leaf({ names: ['shop.test'] });
  const blog = await ca.leaf({ names: ['blog.test'] });
  await install(dir, 'shop.test', shop);
  await install(dir, 'blog.test', blog);
  t.deepEqual(await r.reloadCertificates(), ['blog.test', 'shop.test']);

  for (const [host, pem] of [['shop.test', shop], ['blog.test', blog]] as const) {
    const socket = await tlsConnect(https, host);
    t.is(socket.getPeerX509Certificate()?.fingerprint256, new X509Certificate(pem.cert).fingerprint256);
    socket.destroy();
    const res = await get(`https://127.0.0.1:${https}/x`, host);
    t.is(res.status, 200);
    t.deepEqual(JSON.parse(res.body), { proto: 'https', url: '/x' });
  }
  // No certificate for the name: the handshake fails, nothing is served under another host's name.
  await t.throwsAsync(tlsConnect(https, 'other.test'));
});

test('a new certificate serves the next connection; an open connection keeps going', async (t) => {
  const { router: r, https, dir } = await router(t);
  r.setApp('shop', ['shop.test'], [await echo(t)]);
  const first = await ca.leaf({ names: ['shop.test'] });
  await install(dir, 'shop.test', first);
  await r.reloadCertificates();
  const agent = new Agent({ connect: { ca: ca.ca.cert, servername: 'shop.test' }, pipelining: 1, connections: 1 });
  t.teardown(() => agent.close());
  const ask = async () => (await request(`https://127.0.0.1:${https}/`, { dispatcher: agent, headers: { host: 'shop.test' } })).statusCode;
  t.is(await ask(), 200);

  const second = await ca.leaf({ names: ['shop.test'] });
  await install(dir, 'shop.test', second);
  await r.reloadCertificates();
  // The keep-alive connection made before the change still answers.
  t.is(await ask(), 200);
  const socket = await tlsConnect(https, 'shop.test');
  t.is(socket.getPeerX509Certificate()?.fingerprint256, new X509Certificate(second.cert).fingerprint256);
  socket.destroy();

  // A file that does not load keeps the host's certificate as it was.
  await writeFile(join(dir, 'shop.test.pem'), 'garbage');
  t.deepEqual(await r.reloadCertificates(), ['shop.test']);
  const again = await tlsConnect(https, 'shop.test');
  t.is(again.getPeerX509Certificate()?.fingerprint256, new X509Certificate(second.cert).fingerprint256);
  again.destroy();
});

test('redirects plain HTTP with 308 only where asked and where a certificate exists; the challenge path is exempt', async (t) => {
  const { router: r, http, https, dir } = await router(t);
  r.setApp('shop', ['shop.test', 'new.shop.test'], [await echo(t)], { redirect: true, hsts: false });
  r.setApp('blog', ['blog.test'], [await echo(t)]);
  await install(dir, 'shop.test', await ca.leaf({ names: ['shop.test'] }));
  await install(dir, 'blog.test', await ca.leaf({ names: ['blog.test'] }));
  await r.reloadCertificates();

  const redirected = await get(`http://127.0.0.1:${http}/cart?id=1`, 'shop.test', { method: 'POST' });
  t.is(redirected.status, 308);
  t.is(redirected.headers['location'], `https://shop.test:${https}/cart?id=1`);
  // No certificate yet for this name: it keeps answering on plain HTTP rather than break.
  t.is((await get(`http://127.0.0.1:${http}/`, 'new.shop.test')).status, 200);
  // An app without the redirect is served as before.
  t.is(JSON.parse((await get(`http://127.0.0.1:${http}/`, 'blog.test')).body).proto, 'http');
  // ACME's path is never redirected (a token rack does not hold goes to the app).
  const challenge = await get(`http://127.0.0.1:${http}/.well-known/acme-challenge/abc`, 'shop.test');
  t.is(challenge.status, 200);
  t.is(JSON.parse(challenge.body).url, '/.well-known/acme-challenge/abc');
});

test('HSTS is added to HTTPS answers only, without folding the app\'s headers', async (t) => {
  const { router: r, http, https, dir } = await router(t);
  r.setApp('shop', ['shop.test'], [await echo(t)], { redirect: false, hsts: true });
  await install(dir, 'shop.test', await ca.leaf({ names: ['shop.test'] }));
  await r.reloadCertificates();
  const secure = await get(`https://127.0.0.1:${https}/`, 'shop.test');
  t.is(secure.headers['strict-transport-security'], 'max-age=31536000');
  t.deepEqual(secure.headers['set-cookie'], ['a=1', 'b=2']);
  const plain = await get(`http://127.0.0.1:${http}/`, 'shop.test');
  t.is(plain.headers['strict-transport-security'], undefined);
});

test('an http-01 answer is given only for the host it was set for, on plain HTTP', async (t) => {
  const { router: r, http, https, dir } = await router(t);
  r.setApp('shop', ['shop.test'], [await echo(t)], { redirect: true, hsts: false });
  r.setApp('blog', ['blog.test'], [await echo(t)]);
  await install(dir, 'shop.test', await ca.leaf({ names: ['shop.test'] }));
  await r.reloadCertificates();
  r.setChallenge('tok_1', 'shop.test', 'tok_1.thumbprint');
  const path = '/.well-known/acme-challenge/tok_1';
  const answered = await get(`http://127.0.0.1:${http}${path}`, 'shop.test');
  t.is(answered.status, 200);
  t.is(answered.body, 'tok_1.thumbprint');
  // Another app's host does not get it (its app answers instead), nor does a host no app serves.
  t.not((await get(`http://127.0.0.1:${http}${path}`, 'blog.test')).body, 'tok_1.thumbprint');
  t.is((await get(`http://127.0.0.1:${http}${path}`, 'nobody.test')).status, 404);
  // Nor the TLS port.
  t.not((await get(`https://127.0.0.1:${https}${path}`, 'shop.test')).body, 'tok_1.thumbprint');
  r.removeChallenge('tok_1');
  t.not((await get(`http://127.0.0.1:${http}${path}`, 'shop.test')).body, 'tok_1.thumbprint');
});

test('websockets (any Upgrade) tunnel over TLS with X-Forwarded-Proto https', async (t) => {
  const { router: r, https, dir } = await router(t);
  await install(dir, 'shop.test', await ca.leaf({ names: ['shop.test'] }));
  await r.reloadCertificates();
  // The upstream answers upgrades itself: a server that echoes after 101.
  const echoServer = createServer();
  echoServer.on('upgrade', (req, socket) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\nX-Proto: ${String(req.headers['x-forwarded-proto'])}\r\n\r\n`);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => echoServer.listen(0, '127.0.0.1', resolve));
  t.teardown(() => echoServer.close());
  const port = (echoServer.address() as { port: number }).port;
  r.setApp('shop', ['shop.test'], [{ host: '127.0.0.1', port }]);

  const socket = await tlsConnect(https, 'shop.test');
  socket.write('GET /ws HTTP/1.1\r\nHost: shop.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
  let received = '';
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (c: Buffer) => {
      received += c.toString();
      if (received.includes('\r\n\r\n') && !received.includes('ping')) socket.write('ping');
      if (received.endsWith('ping')) resolve();
    });
    socket.once('error', reject);
  });
  t.regex(received, /^HTTP\/1.1 101/);
  t.regex(received, /X-Proto: https/);
  socket.destroy();
});

/** One request written on an open TLS connection; resolves with what came back before `until` matched. */
async function ask(socket: TLSSocket, host: string): Promise<string> {
  socket.write(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  let text = '';
  return new Promise((resolve, reject) => {
    const onData = (c: Buffer): void => {
      text += c.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(text);
      if (end !== -1 && length !== null && text.length >= end + 4 + Number(length[1])) {
        socket.off('data', onData);
        resolve(text);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

test('a request for a host another certificate serves is 421 on that connection; hosts sharing a certificate share it', async (t) => {
  const { router: r, https, dir } = await router(t);
  r.setApp('shop', ['shop.test', 'www.shop.test'], [await echo(t)]);
  r.setApp('blog', ['blog.test'], [await echo(t)]);
  const shop = await ca.leaf({ names: ['shop.test', 'www.shop.test'] });
  await install(dir, 'shop.test', shop);
  await install(dir, 'www.shop.test', shop);
  await install(dir, 'blog.test', await ca.leaf({ names: ['blog.test'] }));
  await r.reloadCertificates();

  const socket = await tlsConnect(https, 'shop.test');
  t.teardown(() => socket.destroy());
  t.regex(await ask(socket, 'shop.test'), /^HTTP\/1\.1 200 /);
  t.regex(await ask(socket, 'www.shop.test:443'), /^HTTP\/1\.1 200 /);
  const misdirected = await ask(socket, 'blog.test');
  t.regex(misdirected, /^HTTP\/1\.1 421 /);
  t.regex(misdirected, /\r\nX-Content-Type-Options: nosniff\r\n/);
  t.notRegex(misdirected, /blog/);
  // A host with no certificate at all is no more this connection's.
  t.regex(await ask(socket, 'nocert.test'), /^HTTP\/1\.1 421 /);
  // The connection goes on: 421 asks the client to retry elsewhere, not to drop this one.
  t.regex(await ask(socket, 'shop.test'), /^HTTP\/1\.1 200 /);
  const blog = await tlsConnect(https, 'blog.test');
  t.teardown(() => blog.destroy());
  t.regex(await ask(blog, 'blog.test'), /^HTTP\/1\.1 200 /);
});

test('a TLS connection over the cap per address is closed before its handshake', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rack-router-certs-'));
  const r = new Router({ bind: '127.0.0.1', port: 0, https: { port: 0, certDir: dir }, logger, maxConnectionsPerAddress: 1 });
  await r.start();
  t.teardown(async () => {
    await r.stop();
    await rm(dir, { recursive: true, force: true });
  });
  r.setApp('shop', ['shop.test'], [await echo(t)]);
  await install(dir, 'shop.test', await ca.leaf({ names: ['shop.test'] }));
  await r.reloadCertificates();
  const first = await tlsConnect(r.httpsPort, 'shop.test');
  t.teardown(() => first.destroy());
  t.regex(await ask(first, 'shop.test'), /^HTTP\/1\.1 200 /);
  await t.throwsAsync(tlsConnect(r.httpsPort, 'shop.test'));
  first.destroy();
});
