import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { newToken, parseDuration, tokenHash } from '../daemon/access/api-token.js';
import { LoginThrottle } from '../daemon/access/login-throttle.js';
import { TokenAuth } from '../daemon/http/token-auth.js';
import { RackError } from '../daemon/rack-error.js';
import { Store } from '../daemon/store/store.js';

// A real LevelDB in a temp dir: tokens by hash, expiry against a clock we move, the bounded audit log.
async function withStore(keep: number, body: (store: Store, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'rack-store-'));
  const store = new Store(join(dir, 'db'), join(dir, 'builds'), keep);
  await store.start();
  try {
    await body(store, dir);
  } finally {
    await store.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

const request = (token: string, address = '203.0.113.5') =>
  ({ headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': `10.0.0.1, ${address}` }, socket: {} }) as unknown as IncomingMessage;

test('a token expires when its time comes, without anything being run', async (t) => {
  await withStore(100, async (store) => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const token = newToken();
    await store.tokens.add({
      name: 'ci',
      hash: tokenHash(token),
      role: 'app',
      apps: ['shop'],
      createdAt: new Date(now).toISOString(),
      createdBy: 'key admin',
      expiresAt: new Date(now + parseDuration('1h')).toISOString(),
      lastUsedAt: null,
    });
    const auth = new TokenAuth(store, new LoginThrottle({ failures: 100, windowMs: 60_000 }), pino({ level: 'silent' }), () => now);
    const caller = await auth.authenticate(request(token));
    t.deepEqual(caller, { principal: { kind: 'token', name: 'ci', role: 'app', apps: ['shop'] }, via: 'http', address: '203.0.113.5' });
    now += parseDuration('1h');
    const err = await t.throwsAsync(auth.authenticate(request(token)), { instanceOf: RackError });
    t.is(err.code, 'unauthorized');
    t.regex(err.message, /token "ci" expired at 2026-01-01T01:00:00/);
  });
});

test('Basic auth carries the token as the password, whatever the user name', async (t) => {
  await withStore(100, async (store) => {
    const token = newToken();
    await store.tokens.add({ name: 'git', hash: tokenHash(token), role: 'admin', apps: [], createdAt: '', createdBy: '', expiresAt: null, lastUsedAt: null });
    const auth = new TokenAuth(store, new LoginThrottle({ failures: 100, windowMs: 60_000 }), pino({ level: 'silent' }));
    const basic = Buffer.from(`anyone:${token}`).toString('base64');
    const caller = await auth.authenticate({ headers: { authorization: `Basic ${basic}` }, socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage);
    t.is(caller.principal.name, 'git');
    t.is(caller.address, '127.0.0.1');
  });
});

test('the audit log keeps its newest entries only, and numbering goes on after a restart', async (t) => {
  await withStore(5, async (store, dir) => {
    const entry = (n: number) => ({
      time: new Date().toISOString(),
      actor: { kind: 'key' as const, name: 'admin' },
      via: 'ssh' as const,
      address: '127.0.0.1',
      app: n % 2 ? 'shop' : 'blog',
      action: 'config:set',
      detail: `K${n}`,
      outcome: 'ok',
    });
    for (let n = 1; n <= 12; n++) await store.audit.append(entry(n));
    t.deepEqual((await store.audit.list({ limit: 100 })).map((e) => e.id), [12, 11, 10, 9, 8]);
    t.deepEqual((await store.audit.list({ app: 'shop', limit: 100 })).map((e) => e.detail), ['K11', 'K9']);
    await store.stop();
    const again = new Store(join(dir, 'db'), join(dir, 'builds'), 5);
    await again.start();
    t.is((await again.audit.append(entry(13))).id, 13);
    t.deepEqual((await again.audit.list({ limit: 100 })).map((e) => e.id), [13, 12, 11, 10, 9]);
    await again.stop();
  });
});

test('destroying an app takes it out of tokens in the same write', async (t) => {
  await withStore(100, async (store) => {
    await store.createApp('shop');
    await store.tokens.add({ name: 'ci', hash: tokenHash(newToken()), role: 'deploy', apps: ['shop', 'blog'], createdAt: '', createdBy: '', expiresAt: null, lastUsedAt: null });
    await store.destroyApp('shop');
    t.deepEqual((await store.tokens.get('ci'))?.apps, ['blog']);
  });
});
