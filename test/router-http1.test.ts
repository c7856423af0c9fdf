import test from 'ava';
import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { pino } from 'pino';
import { Router, type Upstream } from '../daemon/router/router.js';

// The router's HTTP/1.1 edges, spoken byte by byte over real sockets: a raw client in front,
// real node servers (or a raw TCP server where node would not misbehave on purpose) behind.

const logger = pino({ level: 'silent' });
const closers: Array<() => Promise<void>> = [];
test.after.always(async () => {
  for (const close of closers.reverse()) await close();
});

async function listening(server: Server | http.Server): Promise<Upstream> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(async () => {
    if ('closeAllConnections' in server) server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { host: '127.0.0.1', port: (server.address() as AddressInfo).port };
}

/** A node app that records each request it sees and echoes its body. */
async function echoApp(): Promise<{ upstream: Upstream; seen: { method: string; url: string; body: string; headers: http.IncomingHttpHeaders }[] }> {
  const seen: { method: string; url: string; body: string; headers: http.IncomingHttpHeaders }[] = [];
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: req.method ?? '', url: req.url ?? '', body, headers: req.headers });
      res.end(`${req.method} ${req.url} ${body}`);
    });
  });
  return { upstream: await listening(server), seen };
}

async function routerFor(app: string, upstream: Upstream): Promise<number> {
  const r = new Router({ bind: '127.0.0.1', port: 0, logger });
  const port = await r.start();
  closers.push(() => r.stop());
  r.setApp(app, [`${app}.test`], [upstream]);
  return port;
}

/** Writes `bytes` on a fresh connection and reads until the router closes it or `until` matches. */
async function raw(port: number, bytes: string, until?: (text: string) => boolean): Promise<{ text: string; closed: boolean }> {
  const socket: Socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  let text = '';
  let closed = false;
  await once(socket, 'connect');
  socket.write(bytes, 'latin1');
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 5_000);
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (until?.(text) === true) {
        clearTimeout(timer);
        resolve();
      }
    });
    socket.on('close', () => {
      closed = true;
      clearTimeout(timer);
      resolve();
    });
  });
  socket.destroy();
  return { text, closed };
}

/** Status lines in a stream of answers (bodies here never hold one). */
const answers = (text: string): number => text.match(/HTTP\/1\.1 \d{3} /g)?.length ?? 0;

test('smuggling shapes are refused with 400, the connection is closed, and the app sees nothing', async (t) => {
  const app = await echoApp();
  const port = await routerFor('smuggle', app.upstream);
  const shapes = [
    'POST / HTTP/1.1\r\nHost: smuggle.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: smuggle.test\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: smuggle.test\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd',
    'POST / HTTP/1.1\r\nHost: smuggle.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: smuggle.test\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: smuggle.test\r\nX: 1\r\n Transfer-Encoding: chunked\r\n\r\n',
    'GET / HTTP/1.1\nHost: smuggle.test\n\n',
  ];
  for (const shape of shapes) {
    const { text, closed } = await raw(port, shape);
    t.regex(text, /^HTTP\/1\.1 400 Bad Request\r\n/, JSON.stringify(shape));
    t.regex(text, /Connection: close/);
    t.is(answers(text), 1, 'one answer, then the connection ends');
    t.true(closed);
  }
  t.is(app.seen.length, 0);
});

test('a malformed chunked body is cut off at the bad bytes: 400 to the client, the app is not answered for it', async (t) => {
  const app = await echoApp();
  const port = await routerFor('badchunk', app.upstream);
  const { text, closed } = await raw(port, 'POST /up HTTP/1.1\r\nHost: badchunk.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n');
  t.regex(text, /^HTTP\/1\.1 400 /);
  t.true(closed);
});

test('pipelined requests are answered one by one, in order, on one connection', async (t) => {
  const app = await echoApp();
  const port = await routerFor('pipe', app.upstream);
  const one = 'GET /1 HTTP/1.1\r\nHost: pipe.test\r\n\r\n';
  const two = 'POST /2 HTTP/1.1\r\nHost: pipe.test\r\nContent-Length: 3\r\n\r\nabc';
  const three = 'GET /3 HTTP/1.1\r\nHost: pipe.test\r\n\r\n';
  const { text } = await raw(port, one + two + three, (s) => answers(s) === 3 && s.endsWith('GET /3 '));
  t.is(answers(text), 3);
  const bodies = text.split(/HTTP\/1\.1 200 OK\r\n/).slice(1).map((a) => a.slice(a.indexOf('\r\n\r\n') + 4));
  t.deepEqual(bodies, ['GET /1 ', 'POST /2 abc', 'GET /3 ']);
  t.deepEqual(app.seen.map((s) => s.url), ['/1', '/2', '/3']);
});

test('an HTTP/1.0 client gets its answer and the connection closes after it', async (t) => {
  const app = await echoApp();
  const port = await routerFor('old', app.upstream);
  const { text, closed } = await raw(port, 'GET /legacy HTTP/1.0\r\nHost: old.test\r\n\r\n');
  t.regex(text, /^HTTP\/1\.1 200 /);
  t.true(text.endsWith('GET /legacy '));
  t.regex(text, /Connection: close/i);
  t.true(closed);
});

test('Expect: 100-continue passes the app’s 100 to the client, then the body and the answer', async (t) => {
  const app = await echoApp();
  const port = await routerFor('expect', app.upstream);
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write('PUT /file HTTP/1.1\r\nHost: expect.test\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n');
  const [first] = (await once(socket, 'data')) as [Buffer];
  t.is(first.toString('latin1'), 'HTTP/1.1 100 Continue\r\n\r\n');
  socket.write('data');
  let text = '';
  for await (const c of socket as AsyncIterable<Buffer>) {
    text += c.toString('latin1');
    if (text.endsWith('PUT /file data')) break;
  }
  socket.destroy();
  t.regex(text, /^HTTP\/1\.1 200 OK\r\n/);
  t.is(app.seen[0]?.body, 'data');
});

test('an answer delimited by the app closing is relayed whole, then the client connection closes', async (t) => {
  const server = createTcpServer((s) => {
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, ');
      setTimeout(() => s.end('part two'), 50);
    });
  });
  const port = await routerFor('untold', await listening(server));
  const { text, closed } = await raw(port, 'GET / HTTP/1.1\r\nHost: untold.test\r\n\r\n');
  t.true(text.endsWith('\r\n\r\npart one, part two'), text);
  t.regex(text, /Connection: close/);
  t.true(closed);
});

test('a malformed answer from the app is a 502 from rack, and the router goes on serving', async (t) => {
  let bad = true;
  const server = createTcpServer((s) => {
    s.on('data', () => {
      if (bad) s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok');
      else s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
  });
  const port = await routerFor('garbled', await listening(server));
  const first = await raw(port, 'GET / HTTP/1.1\r\nHost: garbled.test\r\n\r\n', (s) => s.includes('\r\n\r\n') && s.endsWith('\n'));
  t.regex(first.text, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
  t.regex(first.text, /malformed answer/);
  bad = false;
  const second = await raw(port, 'GET / HTTP/1.1\r\nHost: garbled.test\r\n\r\n', (s) => s.endsWith('\r\n\r\nok'));
  t.regex(second.text, /^HTTP\/1\.1 200 OK\r\n/);
});

test('a request head above 16 KiB is a 431 and nothing reaches the app', async (t) => {
  const app = await echoApp();
  const port = await routerFor('big', app.upstream);
  const { text, closed } = await raw(port, `GET / HTTP/1.1\r\nHost: big.test\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  t.regex(text, /^HTTP\/1\.1 431 /);
  t.true(closed);
  t.is(app.seen.length, 0);
});

test('HEAD and 204 answers end at their heads, and the connection carries the next request', async (t) => {
  const server = http.createServer((req, res) => {
    if (req.url === '/none') {
      res.writeHead(204);
      res.end();
    } else {
      res.end('body');
    }
  });
  const port = await routerFor('bodiless', await listening(server));
  const { text } = await raw(
    port,
    'HEAD / HTTP/1.1\r\nHost: bodiless.test\r\n\r\nGET /none HTTP/1.1\r\nHost: bodiless.test\r\n\r\nGET / HTTP/1.1\r\nHost: bodiless.test\r\n\r\n',
    (s) => answers(s) === 3 && s.endsWith('body'),
  );
  t.deepEqual(text.match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 200', 'HTTP/1.1 204', 'HTTP/1.1 200']);
  t.true(text.endsWith('\r\n\r\nbody'));
  t.is(text.split('body').length - 1, 1, 'the HEAD answer carried no body');
});

test('a small body is read whole before the request goes upstream; a large one streams', async (t) => {
  const firstReads: string[] = [];
  const server = createTcpServer((s) => {
    let seen = '';
    s.on('data', (c: Buffer) => {
      if (seen === '') firstReads.push(c.toString('latin1'));
      seen += c.toString('latin1');
      const end = seen.indexOf('\r\n\r\n');
      const length = Number(/content-length: (\d+)/i.exec(seen)?.[1] ?? 0);
      if (end !== -1 && seen.length >= end + 4 + length) {
        s.write('HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope');
        s.end();
      }
      // A large upload is refused as soon as its head is read, as rackd refuses one without a token.
      if (end !== -1 && length > 64 * 1024 && seen.length < end + 4 + length) {
        s.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope');
      }
    });
    s.on('error', () => {});
  });
  const port = await routerFor('buffered', await listening(server));

  const client = connect(port, '127.0.0.1');
  await once(client, 'connect');
  client.write('POST /small HTTP/1.1\r\nHost: buffered.test\r\nContent-Length: 5\r\n\r\n');
  await new Promise((r) => setTimeout(r, 100));
  client.write('hello');
  let text = '';
  for await (const c of client as AsyncIterable<Buffer>) {
    text += c.toString('latin1');
    if (text.endsWith('nope')) break;
  }
  client.destroy();
  t.regex(text, /^HTTP\/1\.1 401 Unauthorized\r\n[\s\S]*\r\n\r\nnope$/);
  t.is(firstReads.length, 1);
  t.regex(firstReads[0] ?? '', /^POST \/small HTTP\/1\.1\r\n[\s\S]*\r\n\r\nhello$/, 'head and body reached the app in one read');

  const big = connect(port, '127.0.0.1');
  big.on('error', () => {});
  await once(big, 'connect');
  big.write(`POST /big HTTP/1.1\r\nHost: buffered.test\r\nContent-Length: ${1024 * 1024}\r\n\r\n`);
  let answer = '';
  big.on('data', (c: Buffer) => (answer += c.toString('latin1')));
  // The app answers while most of the body is still with the client: it got the head first.
  while (!answer.includes('nope')) await new Promise((r) => setTimeout(r, 10));
  t.regex(answer, /^HTTP\/1\.1 401 /);
  t.regex(firstReads[1] ?? '', /^POST \/big HTTP\/1\.1\r\n/);
  big.destroy();
});

test('a client listing Host in its Connection header does not take Host from the app', async (t) => {
  const { upstream, seen } = await echoApp();
  const port = await routerFor('keep', upstream);
  const { text } = await raw(port, 'GET /h HTTP/1.1\r\nHost: keep.test\r\nConnection: Host, X-Drop\r\nX-Drop: 1\r\n\r\n', (s) => s.includes('GET /h'));
  t.regex(text, /^HTTP\/1\.1 200 /);
  t.is(seen.length, 1);
  t.is(seen[0]?.headers.host, 'keep.test');
  t.is(seen[0]?.headers['x-drop'], undefined, 'other headers it names still go');
});
