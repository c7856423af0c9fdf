import test from 'ava';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppEvents } from '../daemon/app-events.js';
import { eventLine } from '../daemon/drains/event-lines.js';
import { noteExit } from '../daemon/supervisor/crash-loop.js';
import { signature, webhookBody } from '../daemon/notifications/webhook-payload.js';
import { api } from './support/api-client.js';
import { RackDaemon } from './support/rack-daemon.js';
import { waitFor } from './support/router-processes.js';
import { TestCa } from './support/test-certs.js';

// Issue 30, notifications: app webhooks get each event as JSON signed with HMAC-SHA256 (base64 of
// the body's HMAC, Heroku's scheme, in Rack-Webhook-Hmac-SHA256). A real HTTPS receiver on
// loopback checks every signature; real rackd, Docker, ssh and git.

interface Delivery {
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json: { resource: string; action: string; app: { name: string }; actor: { name: string }; data: Record<string, unknown>; webhook_metadata: { delivery: { id: string } } };
}

let rack: RackDaemon;
let receiver: Server;
let secret = '';
const received: Delivery[] = [];
/** Deliveries whose signature did not match: any is a failure. */
const badSignatures: string[] = [];
/** The receiver answers 500 to this many more requests (retries). */
let failNext = 0;

async function ssh(args: string[], input?: string): Promise<string> {
  const r = await rack.ssh(args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`ssh ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function signedBy(key: string, body: Buffer, header: unknown): boolean {
  if (typeof header !== 'string') return false;
  const want = createHmac('sha256', key).update(body).digest();
  const got = Buffer.from(header, 'base64');
  return got.length === want.length && timingSafeEqual(got, want);
}

test('the signature is base64 HMAC-SHA256 of the exact body, as Heroku signs', (t) => {
  const body = webhookBody({ kind: 'release', app: 'shop', action: 'succeeded', data: { version: 3 }, at: '2026-12-06T00:00:00.000Z' }, { webhook: 'w', delivery: 'd', attempt: 1 });
  t.is(signature('k'.repeat(32), body), createHmac('sha256', 'k'.repeat(32)).update(body).digest('base64'));
  const json = JSON.parse(body.toString()) as Record<string, unknown>;
  t.is(json['resource'], 'release');
  t.is(json['action'], 'succeeded');
});

test('a process exiting three times within a minute is a crash loop, told once', (t) => {
  let h = noteExit(undefined, 0);
  t.false(h.tell);
  h = noteExit(h.history, 1_000);
  t.false(h.tell);
  h = noteExit(h.history, 2_000);
  t.true(h.tell);
  h = noteExit(h.history, 3_000);
  t.false(h.tell, 'the same loop is not told again at once');
  t.false(noteExit(noteExit(noteExit(undefined, 0).history, 70_000).history, 140_000).tell, 'exits a minute apart are no loop');
  t.deepEqual(eventLine({ kind: 'crash', app: 'a', action: 'crashed', data: { process: 'web.1', type: 'web', exitCode: 1, exits: 3, withinSeconds: 2 }, at: '' })?.proc, 'web.1');
});

test('a listener that throws does not keep the others from an event', (t) => {
  const bus = new AppEvents();
  const heard: string[] = [];
  bus.on(() => {
    throw new Error('boom');
  });
  bus.on((e) => heard.push(e.kind));
  bus.emit({ kind: 'scale', app: 'a', action: 'update', data: {} });
  t.deepEqual(heard, ['scale']);
});

test.before(async () => {
  const ca = await TestCa.create();
  const leaf = await ca.leaf({ names: ['localhost'] });
  const caFile = join(tmpdir(), `rack-webhooks-ca-${process.pid}.pem`);
  await writeFile(caFile, ca.ca.cert);
  receiver = createServer({ cert: leaf.cert, key: leaf.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (!signedBy(secret, body, req.headers['rack-webhook-hmac-sha256'])) badSignatures.push(body.toString().slice(0, 200));
      if (failNext > 0) {
        failNext--;
        res.writeHead(500).end('not now');
        return;
      }
      received.push({ headers: req.headers, body, json: JSON.parse(body.toString()) as Delivery['json'] });
      res.writeHead(200).end('thanks');
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  rack = await RackDaemon.create({ NODE_EXTRA_CA_CERTS: caFile, RACK_FETCH_ALLOW: 'localhost' });
  await ssh(['apps:create', 'hooked']);
});

test.after.always(async () => {
  await rack?.destroy();
  receiver?.closeAllConnections();
  await new Promise((r) => receiver?.close(r));
});

const url = () => `https://localhost:${(receiver.address() as AddressInfo).port}/hook`;

test.serial('webhooks:add shows the secret once; a push sends a signed build event, config:set a release event', async (t) => {
  const added = await ssh(['webhooks:add', url(), '-a', 'hooked']);
  secret = /secret ([0-9a-f]{64})/.exec(added)?.[1] ?? '';
  t.not(secret, '', added);
  t.false((await ssh(['webhooks', '-a', 'hooked'])).includes(secret), 'the secret is not listed again');

  const dir = await rack.appRepo('node-hello', 'hooked');
  const pushed = await rack.push(dir);
  t.is(pushed.code, 0, pushed.stderr);
  await waitFor('the build and release events', () => received.some((d) => d.json.resource === 'build') && received.some((d) => d.json.resource === 'release'));
  const build = received.find((d) => d.json.resource === 'build')!;
  t.is(build.json.action, 'succeeded');
  t.is(build.json.app.name, 'hooked');
  t.is(build.json.data['build'], 1);
  t.is(build.headers['rack-webhook-event'], 'build');

  await ssh(['config:set', 'GREETING=v2', '-a', 'hooked']);
  await waitFor('the release event of v2', () => received.some((d) => d.json.resource === 'release' && d.json.data['version'] === 2));
  const release = received.find((d) => d.json.data['version'] === 2)!;
  t.is(release.json.action, 'succeeded');
  t.is(release.json.data['description'], 'Set GREETING');
  t.is(release.json.actor.name, 'admin');
  t.deepEqual(badSignatures, []);
});

test.serial('a failed attempt is retried and webhooks:deliveries shows the attempts and the answer', async (t) => {
  failNext = 1;
  const before = received.length;
  await ssh(['ps:scale', 'web=2', '-a', 'hooked']);
  await waitFor('the scale event, on its second attempt', () => received.slice(before).some((d) => d.json.resource === 'scale'), 120_000);
  const scale = received.slice(before).find((d) => d.json.resource === 'scale')!;
  t.deepEqual(scale.json.data['formation'], { web: 2 });
  const deliveries = JSON.parse(await ssh(['webhooks:deliveries', '-a', 'hooked', '--json'])) as { id: string; event: string; status: string; attempts: number; lastCode?: number; lastAnswer?: string }[];
  const d = deliveries.find((x) => x.id === scale.json.webhook_metadata.delivery.id)!;
  t.is(d.event, 'scale');
  t.is(d.status, 'succeeded');
  t.is(d.attempts, 2);
  t.is(d.lastCode, 200);
  t.is(d.lastAnswer, 'thanks');
  t.deepEqual(badSignatures, []);
});

test.serial('--events narrows what a webhook gets; --secret-stdin sets the secret; webhooks:remove ends it', async (t) => {
  const second = await ssh(['webhooks:add', `${url()}?only=release`, '--events', 'release', '--secret-stdin', '-a', 'hooked'], `${secret}\n`);
  t.false(second.includes(secret), 'a given secret is not echoed');
  const hooks = JSON.parse(await ssh(['webhooks', '-a', 'hooked', '--json'])) as { id: string; url: string; events: string[] }[];
  const narrow = hooks.find((h) => h.url.includes('only=release'))!;
  t.deepEqual(narrow.events, ['release']);
  const bad = await rack.ssh(['webhooks:add', url(), '--events', 'release,deploys', '-a', 'hooked']);
  t.not(bad.code, 0);
  t.regex(bad.stderr, /unknown event "deploys"/);
  for (const h of hooks) await ssh(['webhooks:remove', h.id, '-a', 'hooked']);
  t.is((await ssh(['webhooks', '-a', 'hooked', '--json'])).trim(), '[]');
});

test.serial('over the API with a deploy-only token: webhooks and drains are added, listed and removed, and audited', async (t) => {
  const token = await rack.createToken('ci', ['--app', 'hooked', '--deploy-only']);
  const added = await api(rack, 'POST', '/api/v1/apps/hooked/webhooks', { token, body: { url: url(), events: ['build', 'crash'], secret: 's'.repeat(20) } });
  t.is(added.status, 201, added.text);
  const hook = added.json as { id: string; events: string[]; secret?: string };
  t.deepEqual(hook.events, ['build', 'crash']);
  t.is(hook.secret, undefined, 'a given secret is not sent back');
  const listed = await api(rack, 'GET', '/api/v1/apps/hooked/webhooks', { token });
  t.true((listed.json as { id: string }[]).some((h) => h.id === hook.id));
  t.is((await api(rack, 'GET', '/api/v1/apps/hooked/webhooks/deliveries?limit=5', { token })).status, 200);
  t.is((await api(rack, 'DELETE', `/api/v1/apps/hooked/webhooks/${hook.id}`, { token })).status, 200);

  const drain = await api(rack, 'POST', '/api/v1/apps/hooked/drains', { token, body: { url: 'syslog+tls://localhost:6514' } });
  t.is(drain.status, 201, drain.text);
  const { id, token: drainToken } = drain.json as { id: string; token: string };
  t.regex(drainToken, /^d\.[0-9a-f-]{36}$/);
  const drains = (await api(rack, 'GET', '/api/v1/apps/hooked/drains', { token })).json as { id: string; sent: number; dropped: number }[];
  t.is(drains.find((d) => d.id === id)?.dropped, 0);
  t.is((await api(rack, 'DELETE', `/api/v1/apps/hooked/drains/${id}`, { token })).status, 200);
  t.is((await api(rack, 'DELETE', `/api/v1/apps/hooked/drains/${id}`, { token })).status, 404);

  const audit = await ssh(['audit', '-a', 'hooked']);
  for (const command of ['webhooks:add', 'webhooks:remove', 'drains:add', 'drains:remove']) t.true(audit.includes(command), `${command} audited`);
  t.false(audit.includes('s'.repeat(20)), 'the secret is not in the audit log');
});

test.serial('a destroyed app takes its drains and webhooks: a new app of the same name has none', async (t) => {
  await ssh(['webhooks:add', url(), '-a', 'hooked']);
  await ssh(['drains:add', 'syslog+tls://localhost:6514', '-a', 'hooked']);
  await ssh(['apps:destroy', 'hooked', '--confirm', 'hooked']);
  await ssh(['apps:create', 'hooked']);
  t.is((await ssh(['webhooks', '-a', 'hooked', '--json'])).trim(), '[]');
  t.is((await ssh(['drains', '-a', 'hooked', '--json'])).trim(), '[]');
  t.is((await ssh(['webhooks:deliveries', '-a', 'hooked', '--json'])).trim(), '[]');
});
