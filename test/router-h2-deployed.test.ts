import test from 'ava';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { exec, RackDaemon } from './support/rack-daemon.js';
import { TestCa } from './support/test-certs.js';

// HTTP/2 end to end: a real rackd and its router process in front of a deployed app (Docker), driven
// by the real curl (and h2load, where installed) over TLS with ALPN.

const HOST = 'h2.test';
let rack: RackDaemon;
let caFile: string;

test.before(async () => {
  rack = await RackDaemon.create();
  const dir = await rack.appRepo('https-echo', 'h2app');
  const push = await rack.push(dir);
  if (push.code !== 0) throw new Error(push.stderr);
  const added = await rack.ssh(['domains:add', HOST, '-a', 'h2app']);
  if (added.code !== 0) throw new Error(added.stderr);
  const ca = await TestCa.create();
  const pem = await ca.leaf({ names: [HOST] });
  const cert = await rack.ssh(['certs:add', HOST], { input: pem.cert + pem.key });
  if (cert.code !== 0) throw new Error(cert.stderr);
  caFile = join(rack.work, 'h2-ca.pem');
  await writeFile(caFile, ca.ca.cert);
});
test.after.always(async () => {
  await rack?.destroy();
});

const resolve = (): string[] => ['--resolve', `${HOST}:${rack.httpsPort}:127.0.0.1`];
const url = (path = '/'): string => `https://${HOST}:${rack.httpsPort}${path}`;

test('curl --http2 through rackd’s router reaches the deployed app: HTTP/2 200, the app told https; h2load’s requests all succeed', async (t) => {
  const r = await exec('curl', ['--http2', '-sS', '-i', '--cacert', caFile, ...resolve(), url('/hello')]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^HTTP\/2 200 \r\n/);
  t.regex(r.stdout, /\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n/);
  const body = JSON.parse(r.stdout.slice(r.stdout.indexOf('\r\n\r\n') + 4)) as { proto: string; host: string; url: string; method: string };
  t.deepEqual(body, { proto: 'https', host: `${HOST}:${rack.httpsPort}`, url: '/hello', method: 'GET' });
  // The same listener still speaks HTTP/1.1 to a client that asks for it.
  const h1 = await exec('curl', ['--http1.1', '-sS', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', '--cacert', caFile, ...resolve(), url()]);
  t.is(h1.stdout, '1.1 200');

  const h2load = await exec('sh', ['-c', 'command -v h2load']);
  if (h2load.code !== 0) {
    t.log('h2load is not installed (apt-get install nghttp2-client): its part is not run');
    return;
  }
  const load = await exec('h2load', ['-n', '100', '-c', '2', '-m', '10', `--connect-to=127.0.0.1:${rack.httpsPort}`, url()]);
  t.is(load.code, 0, load.stderr);
  t.regex(load.stdout, /requests: 100 total, 100 started, 100 done, 100 succeeded, 0 failed/);
  t.regex(load.stdout, /status codes: 100 2xx/);
  t.regex(load.stdout, /Application protocol: h2/);
});

test('a WebSocket upgrade over TLS still tunnels to the deployed app; the access lines of h2 requests say HTTP/2', async (t) => {
  const socket = connect({ host: '127.0.0.1', port: rack.httpsPort, servername: HOST, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
  t.teardown(() => socket.destroy());
  await once(socket, 'secureConnect');
  socket.write(`GET /ws HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n`);
  let received = '';
  await new Promise<void>((done, fail) => {
    socket.on('data', (c: Buffer) => {
      received += c.toString('latin1');
      if (received.endsWith('\r\n\r\n')) socket.write('ping');
      if (received.endsWith('ping')) done();
    });
    socket.once('error', fail);
    socket.once('close', () => fail(new Error(`closed after ${JSON.stringify(received)}`)));
  });
  t.regex(received, /^HTTP\/1\.1 101 /);
  t.regex(received, /X-Proto: https/);

  const on = await rack.ssh(['logs:router', 'on', '-a', 'h2app']);
  t.is(on.code, 0, on.stderr);
  const deadline = Date.now() + 60_000;
  let lines = '';
  // The router learns which apps' lines are wanted a moment after the command: ask until one is there.
  while (!/path="\/logged" .*protocol=HTTP\/2/.test(lines)) {
    if (Date.now() > deadline) break;
    await exec('curl', ['--http2', '-sS', '-o', '/dev/null', '--cacert', caFile, ...resolve(), url('/logged')]);
    lines = (await rack.ssh(['logs', '-a', 'h2app', '-p', 'router', '-n', '20'])).stdout;
  }
  t.regex(lines, /method=GET path="\/logged" host=h2\.test status=200 ms=\d+ ip=127\.0\.0\.1 protocol=HTTP\/2/);
});
