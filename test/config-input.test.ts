import test from 'ava';
import { request } from 'node:http';
import { api } from './support/api-client.js';
import { RackDaemon } from './support/rack-daemon.js';

// What a config value may hold, checked once for ssh, the API and the Console, and the longest
// command line ssh carries. A real rackd and the real ssh client; the app is never deployed, so
// every accepted change is kept for its first deploy and no container runs.
let rack: RackDaemon;
let token: string;

test.before(async () => {
  rack = await RackDaemon.create();
  const r = await rack.ssh(['apps:create', 'shop']);
  if (r.code !== 0) throw new Error(r.stderr);
  token = await rack.createToken('ci');
});
test.after.always(async () => {
  await rack?.destroy();
});

async function config(): Promise<Record<string, string>> {
  const r = await rack.ssh(['config', '--json', '-a', 'shop']);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as Record<string, string>;
}

const errorOf = (json: unknown) => (json as { error: { code: string; message: string } }).error;

test.serial('the API refuses a NUL byte or a lone surrogate in a config value with one line', async (t) => {
  const nul = await api(rack, 'PATCH', '/api/v1/apps/shop/config', { token, body: { set: { GOOD: 'x', BAD: 'a\u0000b' } } });
  t.is(nul.status, 400, nul.text);
  t.is(errorOf(nul.json).code, 'bad_argument');
  t.regex(errorOf(nul.json).message, /^value of BAD contains a NUL byte/);
  // JSON can carry half a surrogate pair; UTF-8 cannot.
  const half = await api(rack, 'PATCH', '/api/v1/apps/shop/config', { token, rawBody: '{"set":{"HALF":"a\\ud800b"}}', headers: { 'content-type': 'application/json' } });
  t.is(half.status, 400, half.text);
  t.regex(errorOf(half.json).message, /^value of HALF is not valid Unicode/);
  t.deepEqual(await config(), {}, 'nothing was applied');
  // A whole pair (an emoji) is a value like any other.
  const emoji = await api(rack, 'PATCH', '/api/v1/apps/shop/config', { token, body: { set: { EMOJI: '\u{1F680}' } } });
  t.is(emoji.status, 200, emoji.text);
  t.deepEqual(await config(), { EMOJI: '\u{1F680}' });
});

test.serial('a config past its total size is refused; shrinking it is not', async (t) => {
  const chunk = 'v'.repeat(30 * 1024);
  for (const key of ['A1', 'A2', 'A3', 'A4']) {
    const r = await api(rack, 'PATCH', '/api/v1/apps/shop/config', { token, body: { set: { [key]: chunk } } });
    t.is(r.status, 200, r.text);
  }
  const over = await api(rack, 'PATCH', '/api/v1/apps/shop/config', { token, body: { set: { A5: chunk } } });
  t.is(over.status, 400, over.text);
  t.regex(errorOf(over.json).message, /at most 128 KiB in all/);
  t.false('A5' in (await config()));
  const unset = await rack.ssh(['config:unset', 'A1', 'A2', 'A3', 'A4', '-a', 'shop']);
  t.is(unset.code, 0, unset.stderr);
});

test.serial('the Console refuses a NUL byte in a config value with one line', async (t) => {
  const origin = `http://rack.localhost:${rack.httpPort}`;
  const post = (path: string, form: string, cookie?: string) =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
      const headers: Record<string, string> = { host: `rack.localhost:${rack.httpPort}`, origin, 'content-type': 'application/x-www-form-urlencoded' };
      if (cookie) headers['cookie'] = cookie;
      const req = request({ host: '127.0.0.1', port: rack.httpPort, method: 'POST', path, headers, agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end(form);
    });
  const signIn = await post('/console/sign-in', `token=${encodeURIComponent(token)}`);
  const cookie = String(signIn.headers['set-cookie'] ?? '').split(';')[0]!;
  t.regex(cookie, /^__Host-rack_session=/);
  const r = await post('/console/apps/shop/environment', 'new-key=BAD&new-value=a%00b', cookie);
  t.is(r.status, 400, r.body);
  t.regex(r.body, /value of BAD contains a NUL byte/);
  t.false('BAD' in (await config()));
});

test.serial('ssh: a command line past the limit gets one clear line and a non-zero exit', async (t) => {
  // Past ssh2's packet limit (35,000 bytes): the request itself cannot be read.
  const huge = await rack.ssh(['config:set', `BIG=${'x'.repeat(40_000)}`, '-a', 'shop']);
  t.not(huge.code, 0);
  t.is(huge.stderr.trim(), '!     command line too long (max 32768 bytes)');
  // Under the packet limit but past rack's own: the same line.
  const long = await rack.ssh(['config:set', `BIG=${'x'.repeat(33_000)}`, '-a', 'shop']);
  t.not(long.code, 0);
  t.regex(long.stderr, /^ !     command line too long \(max 32768 bytes\)/);
  // The connection is still good for the next command.
  const ok = await rack.ssh(['config:set', `BIG=${'x'.repeat(30_000)}`, '-a', 'shop']);
  t.is(ok.code, 0, ok.stderr);
  t.is((await config())['BIG']?.length, 30_000);
});
