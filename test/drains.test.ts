import test from 'ava';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { Drain, type DrainTransport } from '../daemon/drains/drain.js';
import { logplexRequest } from '../daemon/drains/logplex-frame.js';
import { octetFrame, syslogMessage } from '../daemon/drains/syslog-frame.js';
import type { LogLine } from '../daemon/logs/log-hub.js';
import { createLogger } from '../daemon/log.js';
import { parseOctetFrames, parseSyslog } from './support/octet-frames.js';
import { commitFile, RackDaemon } from './support/rack-daemon.js';
import { waitFor } from './support/router-processes.js';
import { TestCa } from './support/test-certs.js';

// Issue 30, drains: Heroku's logplex POSTs and RFC 5424 over TLS with RFC 6587 octet counting, to
// real receivers on loopback that read the framing strictly; a dead receiver slows nothing and its
// drops are counted. Real rackd, real Docker, real ssh.

const line = (text: string, source = 'app[web.1]', time = '2026-12-06T04:05:20.123Z'): LogLine => ({ time, app: 'shop', source, type: 'web', text });

test('a line is framed as Logplex writes it: octet count in bytes, app web.1 and rack router', (t) => {
  t.is(syslogMessage(line('héllo'), 'shop'), '<190>1 2026-12-06T04:05:20.123000+00:00 shop app web.1 - héllo');
  t.is(syslogMessage(line('method=GET', 'rack[router]'), 'shop'), '<158>1 2026-12-06T04:05:20.123000+00:00 shop rack router - method=GET');
  t.is(octetFrame('héllo'), '6 héllo', 'the count is of bytes: é is two');
  const { body, headers } = logplexRequest([line('one'), line('two')], 'd.token', 'ABC');
  t.is(headers['Content-Type'], 'application/logplex-1');
  t.is(headers['Logplex-Msg-Count'], '2');
  t.is(headers['Logplex-Drain-Token'], 'd.token');
  const frames = parseOctetFrames(body);
  t.deepEqual(frames.map((f) => parseSyslog(f.slice(0, -1)).msg), ['one', 'two']);
  t.true(frames.every((f) => f.endsWith('\n')), "each message ends in a newline its count includes, as Logplex's do");
});

test('the strict reader refuses a count that runs past the body or a leading zero', (t) => {
  t.throws(() => parseOctetFrames(Buffer.from('10 short')));
  t.throws(() => parseOctetFrames(Buffer.from('05 hello')));
  t.throws(() => parseOctetFrames(Buffer.from('5 hello\n')), undefined, 'a byte after the last frame');
});

test('a drain whose receiver never answers holds a bounded buffer, drops the oldest and counts them', async (t) => {
  let sends = 0;
  const stuck: DrainTransport = {
    send: () => ((sends++), new Promise<void>(() => {})),
    close: () => {},
  };
  const limits = { maxBatch: 10, maxWaitMs: 5, capacity: 100, attempts: 3, backoffMs: 5, maxBackoffMs: 10 };
  const drain = new Drain('d1', stuck, createLogger('silent'), limits);
  drain.start();
  for (let i = 0; i < 1000; i++) drain.push(line(`l${i}`));
  await waitFor('the first batch sent', () => sends === 1, 10_000);
  // 1000 pushed at once: the newest 100 held (10 of them now in the stuck batch), the rest dropped.
  t.is(drain.stats.dropped, 1000 - 100);
  t.is(drain.stats.sent, 0);
  await drain.stop();
});

test('a failing batch is retried with backoff, then dropped and counted; the next one goes', async (t) => {
  const got: string[][] = [];
  let failures = 2;
  const flaky: DrainTransport = {
    send: async (batch) => {
      if (failures-- > 0) throw new Error('receiver refused');
      got.push(batch.map((l) => l.text));
    },
    close: () => {},
  };
  const drain = new Drain('d2', flaky, createLogger('silent'), { maxBatch: 5, maxWaitMs: 5, capacity: 100, attempts: 3, backoffMs: 5, maxBackoffMs: 10 });
  drain.start();
  for (let i = 0; i < 5; i++) drain.push(line(`l${i}`));
  await waitFor('the batch delivered at its third try', () => got.length === 1, 10_000);
  t.deepEqual(got[0], ['l0', 'l1', 'l2', 'l3', 'l4']);
  t.is(drain.stats.sent, 5);
  t.is(drain.stats.lastError, 'receiver refused');
  await drain.stop();
});

// ---- a real rackd and real receivers

interface Received {
  headers: Record<string, string | string[] | undefined>;
  messages: string[];
}

let rack: RackDaemon;
let ca: TestCa;
let httpsReceiver: HttpsServer;
const posts: Received[] = [];
const framingErrors: string[] = [];
let syslogReceiver: TlsServer;
const syslogMessages: string[] = [];
let deadReceiver: HttpsServer;
let deadRequests = 0;

const port = (s: { address(): AddressInfo | string | null }) => (s.address() as AddressInfo).port;

async function ssh(args: string[], input?: string): Promise<string> {
  const r = await rack.ssh(args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`ssh ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test.before(async () => {
  ca = await TestCa.create();
  const leaf = await ca.leaf({ names: ['localhost'] });
  const caFile = join(tmpdir(), `rack-drains-ca-${process.pid}.pem`);
  await writeFile(caFile, ca.ca.cert);

  httpsReceiver = createHttpsServer({ cert: leaf.cert, key: leaf.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        posts.push({ headers: req.headers, messages: parseOctetFrames(Buffer.concat(chunks)) });
        res.writeHead(204).end();
      } catch (err) {
        framingErrors.push(String(err));
        res.writeHead(400).end();
      }
    });
  });
  httpsReceiver.listen(0, '127.0.0.1');
  await once(httpsReceiver, 'listening');

  // RFC 6587 octet counting on a stream: frames may be cut anywhere by TCP, so bytes are kept until whole.
  syslogReceiver = createTlsServer({ cert: leaf.cert, key: leaf.key }, (socket) => {
    let pending = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('data', (c: Buffer) => {
      pending = Buffer.concat([pending, c]);
      for (;;) {
        const space = pending.indexOf(0x20);
        if (space < 0) return;
        const digits = pending.subarray(0, space).toString('ascii');
        if (!/^[1-9][0-9]{0,6}$/.test(digits)) {
          framingErrors.push(`syslog: bad length ${JSON.stringify(digits.slice(0, 20))}`);
          socket.destroy();
          return;
        }
        const end = space + 1 + Number(digits);
        if (pending.length < end) return;
        syslogMessages.push(pending.subarray(space + 1, end).toString('utf8'));
        pending = pending.subarray(end);
      }
    });
  });
  syslogReceiver.listen(0, '127.0.0.1');
  await once(syslogReceiver, 'listening');

  // Takes the connection and the request, and never answers. (A syslog receiver that reads
  // nothing would not do: the kernel's buffers take megabytes before a write waits.)
  deadReceiver = createHttpsServer({ cert: leaf.cert, key: leaf.key }, (req) => {
    deadRequests++;
    req.resume();
  });
  deadReceiver.listen(0, '127.0.0.1');
  await once(deadReceiver, 'listening');

  rack = await RackDaemon.create({ NODE_EXTRA_CA_CERTS: caFile, RACK_FETCH_ALLOW: 'localhost' });
  const dir = await rack.appRepo('node-chatty', 'chatty');
  const pushed = await rack.push(dir);
  if (pushed.code !== 0) throw new Error(`push failed: ${pushed.stderr}`);
});

test.after.always(async () => {
  await rack?.destroy();
  httpsReceiver?.closeAllConnections();
  deadReceiver?.closeAllConnections();
  await Promise.all([httpsReceiver, syslogReceiver, deadReceiver].filter(Boolean).map((s) => new Promise((r) => s.close(r))));
});

test.serial('an HTTPS drain receives Logplex POSTs: headers, strict octet frames, app web.N and rack router lines', async (t) => {
  const added = await ssh(['drains:add', `https://localhost:${port(httpsReceiver)}/logs`, '-a', 'chatty']);
  const token = /d\.[0-9a-f-]{36}/.exec(added)?.[0];
  t.truthy(token, added);
  await rack.get('chatty', '/first-request');
  await waitFor('the app line and the router line at the receiver', () => {
    const all = posts.flatMap((p) => p.messages);
    return all.some((m) => m.includes('got /first-request')) && all.some((m) => m.includes('rack router') && m.includes('/first-request'));
  });
  t.deepEqual(framingErrors, []);
  for (const p of posts) {
    t.is(p.headers['content-type'], 'application/logplex-1');
    t.is(p.headers['logplex-drain-token'], token);
    t.regex(String(p.headers['logplex-frame-id']), /^[0-9A-F]{32}$/);
    t.is(Number(p.headers['logplex-msg-count']), p.messages.length);
  }
  const fields = posts.flatMap((p) => p.messages).map((m) => parseSyslog(m.replace(/\n$/, '')));
  const app = fields.find((f) => f.msg === 'got /first-request')!;
  t.is(app.host, 'chatty');
  t.is(app.appName, 'app');
  t.regex(app.procId, /^web\.\S+$/);
  const router = fields.find((f) => f.appName === 'rack' && f.procId === 'router' && f.msg.includes('/first-request'));
  t.truthy(router, 'the router line as `rack router`');
  const listed = JSON.parse(await ssh(['drains', '-a', 'chatty', '--json'])) as { token: string; sent: number; dropped: number }[];
  t.is(listed[0]!.token, token!);
  t.true(listed[0]!.sent >= 2);
});

test.serial('a syslog+tls drain receives RFC 5424 messages with the drain token as HOSTNAME', async (t) => {
  const added = await ssh(['drains:add', `syslog+tls://localhost:${port(syslogReceiver)}`, '-a', 'chatty']);
  const token = /d\.[0-9a-f-]{36}/.exec(added)![0];
  await rack.get('chatty', '/to-syslog');
  await waitFor('the app line at the syslog receiver', () => syslogMessages.some((m) => m.includes('got /to-syslog')));
  t.deepEqual(framingErrors, []);
  const f = parseSyslog(syslogMessages.find((m) => m.includes('got /to-syslog'))!);
  t.is(f.host, token);
  t.is(f.appName, 'app');
  t.is(f.msg, 'got /to-syslog');
});

test.serial('a dead receiver slows neither the app nor logs; its drops are counted and shown', async (t) => {
  await ssh(['drains:add', `https://localhost:${port(deadReceiver)}/never`, '-a', 'chatty']);
  // More lines than a drain holds (10,000): the dead drain must drop.
  t.is((await rack.get('chatty', '/spam?n=15000')).status, 200);
  await waitFor('drops counted on the dead drain', async () => {
    const listed = JSON.parse(await ssh(['drains', '-a', 'chatty', '--json'])) as { url: string; dropped: number }[];
    return (listed.find((d) => d.url.includes(String(port(deadReceiver))))?.dropped ?? 0) > 0;
  }, 120_000);
  // The app answers and `logs` shows its newest lines while the drain stays stuck.
  t.is((await rack.get('chatty', '/after-spam')).body, 'chatty\n');
  await waitFor('logs shows the request after the spam', async () => (await ssh(['logs', '-n', '20', '-a', 'chatty'])).includes('got /after-spam'));
  const text = await ssh(['drains', '-a', 'chatty']);
  t.regex(text, /dropped [1-9][0-9]*/);
  t.true(deadRequests > 0, 'the dead receiver was sent to');
});

test.serial('a crash loop and a failed build reach the drain as rack lines', async (t) => {
  for (let i = 0; i < 3; i++) {
    t.is((await rack.get('chatty', '/exit')).body, 'bye\n');
    // Back up (Docker restarted it, the router has it again) before the next crash.
    await waitFor('the app answering again', async () => (await rack.get('chatty', '/').catch(() => ({ status: 0 }))).status === 200);
  }
  const messages = () => posts.flatMap((p) => p.messages).map((m) => parseSyslog(m.replace(/\n$/, '')));
  await waitFor('the crash line at the receiver', () => messages().some((f) => f.msg.startsWith('State changed from up to crashed')));
  const crash = messages().find((f) => f.msg.startsWith('State changed from up to crashed'))!;
  t.is(crash.appName, 'rack');
  t.regex(crash.procId, /^web\.\S+$/);

  await commitFile(join(rack.work, 'chatty'), 'package.json', '{ not json', 'break the build');
  t.not((await rack.push(join(rack.work, 'chatty'))).code, 0);
  await waitFor('the failed build line at the receiver', () => messages().some((f) => f.procId === 'build' && /^Build b2 failed/.test(f.msg)));
  t.pass();
});

test.serial('drains:remove by URL stops the drain; a private address is refused unless RACK_FETCH_ALLOW names it', async (t) => {
  const url = `https://localhost:${port(deadReceiver)}/never`;
  t.regex(await ssh(['drains:remove', url, '-a', 'chatty']), /removed drain/);
  const listed = JSON.parse(await ssh(['drains', '-a', 'chatty', '--json'])) as { url: string }[];
  t.false(listed.some((d) => d.url === url));
  const refused = await rack.ssh(['drains:add', 'https://127.0.0.2:9/x', '-a', 'chatty']);
  t.not(refused.code, 0);
  t.regex(refused.stderr, /loopback, private or reserved/);
  const badScheme = await rack.ssh(['drains:add', 'ftp://example.com/x', '-a', 'chatty']);
  t.not(badScheme.code, 0);
  t.regex(badScheme.stderr, /scheme must be/);
});
