import test from 'ava';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { Validator } from '@seriousme/openapi-schema-validator';
import { request } from 'undici';
import { api, events } from './support/api-client.js';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { commitFile, exec, ROOT, RackDaemon } from './support/rack-daemon.js';

// The API as a CI system uses it: real curl and undici through the router's rack.localhost,
// a real rackd, Docker and the node-env fixture (it crashes when CRASH is set).
let rack: RackDaemon;
let admin: string;
let dir: string;
let spec: { components: { schemas: Record<string, unknown> }; paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema?: unknown; 'x-result'?: unknown }> }> }>> };
const ajv = new Ajv2020({ strict: false });
addFormats.default(ajv);

test.before(async () => {
  rack = await RackDaemon.create();
  dir = await rack.appRepo('node-env', 'shop');
  const push = await rack.push(dir);
  if (push.code !== 0) throw new Error(push.stderr);
  admin = await rack.createToken('ci');
  spec = (await api(rack, 'GET', '/api/v1/openapi.json')).json as typeof spec;
});
test.after.always(async () => {
  await rack?.destroy();
});

/** `curl -sS -N --fail-with-body` as a CI script runs it, at rack's host through the router. */
function curl(method: string, path: string, data: unknown, token = admin) {
  return exec('curl', [
    '-sS', '-N', '--fail-with-body',
    '--resolve', `rack.localhost:${rack.httpPort}:127.0.0.1`,
    '-X', method,
    '-H', `Authorization: Bearer ${token}`,
    '-H', 'Content-Type: application/json',
    '--data', JSON.stringify(data),
    `http://rack.localhost:${rack.httpPort}${path}`,
  ]);
}

/** Checks an answer against the OpenAPI document's schema for that operation. */
function conforms(t: import('ava').ExecutionContext, path: string, method: string, status: number, value: unknown, part: 'schema' | 'x-result' = 'schema'): void {
  const content = spec.paths[path]?.[method]?.responses[String(status)]?.content ?? {};
  const media = content['application/json'] ?? content['application/x-ndjson'];
  const schema = part === 'x-result' ? media?.['x-result'] : media?.schema;
  t.truthy(schema, `${method} ${path} ${status} has a schema`);
  // The document's references point into its components; give the schema those as its own $defs.
  const local = (v: unknown) => JSON.parse(JSON.stringify(v).replace(/#\/components\/schemas\/(\w+)/g, '#/$defs/$1')) as Record<string, unknown>;
  const validate = ajv.compile({ ...local(schema), $defs: local(spec.components.schemas) });
  t.true(validate(value), `${method} ${path}: ${ajv.errorsText(validate.errors)}`);
}

test.serial('the OpenAPI document is valid OpenAPI 3.1 and public', async (t) => {
  const r = await api(rack, 'GET', '/api/v1/openapi.json');
  t.is(r.status, 200);
  const result = await new Validator().validate(r.json as Parameters<Validator['validate']>[0]);
  t.true(result.valid, String(JSON.stringify(result.errors ?? null)).slice(0, 500));
  t.truthy(spec.paths['/apps/{app}/config']?.['patch']);
});

test.serial('answers match the OpenAPI document', async (t) => {
  const cases: [string, string, string][] = [
    ['/apps', '/api/v1/apps', 'get'],
    ['/apps/{app}', '/api/v1/apps/shop', 'get'],
    ['/apps/{app}/builds', '/api/v1/apps/shop/builds', 'get'],
    ['/apps/{app}/builds/{build}', '/api/v1/apps/shop/builds/1', 'get'],
    ['/apps/{app}/releases', '/api/v1/apps/shop/releases', 'get'],
    ['/apps/{app}/releases/{version}', '/api/v1/apps/shop/releases/1', 'get'],
    ['/apps/{app}/config', '/api/v1/apps/shop/config', 'get'],
    ['/apps/{app}/processes', '/api/v1/apps/shop/processes', 'get'],
    ['/apps/{app}/domains', '/api/v1/apps/shop/domains', 'get'],
    ['/apps/{app}/metrics', '/api/v1/apps/shop/metrics?since=2h&type=web', 'get'],
    ['/apps/{app}/logs', '/api/v1/apps/shop/logs?lines=10', 'get'],
    ['/keys', '/api/v1/keys', 'get'],
    ['/tokens', '/api/v1/tokens', 'get'],
    ['/audit', '/api/v1/audit', 'get'],
  ];
  for (const [template, path, method] of cases) {
    const r = await api(rack, method.toUpperCase(), path, { token: admin });
    t.is(r.status, 200, `${path}: ${r.text.slice(0, 200)}`);
    conforms(t, template, method, 200, r.json);
  }
  const made = await api(rack, 'POST', '/api/v1/tokens', { token: admin, body: { name: 'made', apps: ['shop'], deployOnly: true, expires: '2w' } });
  t.is(made.status, 201);
  conforms(t, '/tokens', 'post', 201, made.json);
  t.regex((made.json as { token: string }).token, /^rack_/);
  const refused = await api(rack, 'GET', '/api/v1/apps/shop', { token: (made.json as { token: string }).token });
  t.is(refused.status, 403);
  conforms(t, '/apps/{app}', 'get', 403, refused.json);
});

test.serial('one PATCH sets and unsets several vars: one release, streamed to curl, which exits 0', async (t) => {
  t.is((await rack.ssh(['config:set', 'OLD=1', '-a', 'shop'])).code, 0);
  const before = (JSON.parse((await rack.ssh(['releases', '-a', 'shop', '--json'])).stdout) as unknown[]).length;
  const r = await curl('PATCH', '/api/v1/apps/shop/config', { set: { GREETING: 'hello world', DB_URL: 'postgres://x' }, unset: ['OLD'] });
  t.is(r.code, 0, r.stderr + r.stdout);
  const evs = events(r.stdout);
  t.true(evs.some((e) => typeof e['line'] === 'string' && (e['line'] as string).startsWith('-----> ')), r.stdout);
  const last = evs[evs.length - 1]!;
  t.like(last, { result: { status: 'succeeded', description: 'Set GREETING, DB_URL; Unset OLD' } });
  conforms(t, '/apps/{app}/config', 'patch', 200, last['result'], 'x-result');
  for (const e of evs) conforms(t, '/apps/{app}/config', 'patch', 200, e);
  const after = JSON.parse((await rack.ssh(['releases', '-a', 'shop', '--json'])).stdout) as unknown[];
  t.is(after.length, before + 1, 'exactly one new release');
  t.is((await rack.get('shop', '/env/GREETING')).body, 'hello world');
  t.is((await rack.get('shop', '/env/OLD')).status, 404);
});

test.serial('the lines arrive while the rollout runs, before its result', async (t) => {
  const res = await request(`http://127.0.0.1:${rack.httpPort}/api/v1/apps/shop/formation/restart`, {
    method: 'POST',
    headers: { host: 'rack.localhost', authorization: `Bearer ${admin}` },
  });
  t.is(res.statusCode, 200);
  t.regex(String(res.headers['content-type']), /application\/x-ndjson/);
  const chunks: string[] = [];
  for await (const chunk of res.body) chunks.push(String(chunk));
  t.true(chunks.length >= 2, 'more than one piece: the answer was streamed');
  t.false(chunks[0]!.includes('"result"'), 'the first piece holds lines, not the end');
  t.like(events(chunks.join('')).pop(), { result: { restarted: null } });
});

test.serial('a failing rollout ends the stream with an error line and curl fails; the old release serves', async (t) => {
  const r = await curl('PATCH', '/api/v1/apps/shop/config', { set: { CRASH: '1' } });
  t.not(r.code, 0, 'curl exits non-zero');
  const evs = events(r.stdout);
  t.true(evs.some((e) => typeof e['line'] === 'string'));
  t.like(evs[evs.length - 1], { error: { code: 'deploy_failed' } });
  t.is((await rack.get('shop', '/env/GREETING')).body, 'hello world', 'the release before still serves');
});

test.serial('a refusal before the stream starts is an ordinary JSON error with its status', async (t) => {
  const r = await curl('POST', '/api/v1/apps/shop/releases/rollback', { version: 99 });
  t.is(r.code, 22, 'curl --fail-with-body exits 22 on an HTTP error');
  t.like(JSON.parse(r.stdout), { error: { code: 'no_such_release' } });
});

test.serial('bad input gets a clear JSON error with the right status, and changes nothing', async (t) => {
  const before = (await rack.ssh(['releases', '-a', 'shop', '--json'])).stdout.length;
  const config = '/api/v1/apps/shop/config';
  const cases: [string, string, Parameters<typeof api>[3], number, string, RegExp?][] = [
    ['PATCH', config, { rawBody: '{"set": {', headers: { 'content-type': 'application/json' } }, 400, 'bad_argument', /not valid JSON/],
    ['PATCH', config, { rawBody: '[1,2]', headers: { 'content-type': 'application/json' } }, 400, 'bad_argument', /JSON object/],
    ['PATCH', config, { rawBody: JSON.stringify({ set: { BIG: 'x'.repeat(2 << 20) } }), headers: { 'content-type': 'application/json' } }, 413, 'payload_too_large'],
    ['PATCH', config, { body: { set: { A: '1' }, colour: 'red' } }, 400, 'bad_argument', /unknown field "colour"/],
    ['PATCH', config, { body: { set: { 'BAD-KEY': '1' } } }, 400, 'bad_argument'],
    ['PATCH', config, { body: { set: { A: 1 } } }, 400, 'bad_argument', /must be string/],
    ['PATCH', config, { rawBody: 'A=1', headers: { 'content-type': 'text/plain' } }, 415, 'unsupported_media_type'],
    ['PATCH', config, { body: {} }, 400, 'bad_argument', /nothing to change/],
    ['PATCH', config, { body: { set: { A: '1' }, unset: ['A'] } }, 400, 'bad_argument', /both set and unset/],
    ['GET', '/api/v1/apps/../keys', {}, 400, 'bad_argument', /dot segments/],
    ['GET', '/api/v1/apps/%2e%2e/config', {}, 400, 'bad_argument'],
    ['GET', '/api/v1/apps/shop%2Fconfig', {}, 400, 'bad_argument'],
    ['GET', '/api/v1/apps/Shop', {}, 400, 'bad_app_name'],
    ['GET', '/api/v1/apps/nope', {}, 404, 'no_such_app'],
    ['PUT', config, { body: { set: {} } }, 405, 'method_not_allowed'],
    ['GET', '/api/v1/nothing', {}, 404, 'not_found'],
    ['GET', '/api/v1/apps?colour=red', {}, 400, 'bad_argument', /unknown field "colour"/],
    ['GET', '/api/v1/apps/shop/releases/v0', {}, 400, 'bad_argument'],
  ];
  for (const [method, path, opts, status, code, message] of cases) {
    const r = await api(rack, method, path, { token: admin, ...opts });
    t.is(r.status, status, `${method} ${path}: ${r.text.slice(0, 200)}`);
    t.is((r.json as { error?: { code?: string } })?.error?.code, code, `${method} ${path}`);
    if (message) t.regex((r.json as { error: { message: string } }).error.message, message, `${method} ${path}`);
  }
  const put = await api(rack, 'PUT', config, { token: admin, body: { set: {} } });
  t.is(put.headers['allow'], 'GET, PATCH');
  t.is((await rack.ssh(['releases', '-a', 'shop', '--json'])).stdout.length, before, 'no release made');
  t.false(rack.output.includes(admin), 'the token is never logged');
});

test.serial('the CI recipe in docs/API.md deploys: a push over HTTP, then a config change with curl', async (t) => {
  const doc = await readFile(join(ROOT, 'docs', 'API.md'), 'utf8');
  const recipe = /## A CI deploy in five lines of shell\n\n```sh\n([\s\S]*?)```/.exec(doc)?.[1];
  t.truthy(recipe);
  t.true(recipe!.trim().split('\n').length <= 6, 'five lines (one continued)');
  const script = join(rack.work, 'ci.sh');
  await writeFile(script, recipe!);
  const token = await rack.createToken('ci-recipe', ['--app', 'shop']);
  const marker = String.raw`require('http').createServer((q, s) => s.end(q.url === '/sha' ? process.env.GIT_SHA : 'from ci')).listen(process.env.PORT);`;
  await commitFile(dir, 'server.js', marker, 'a commit CI deploys');
  const r = await exec('bash', [script], {
    cwd: dir,
    env: { ...process.env, RACK: `http://rack.localhost:${rack.httpPort}`, RACK_TOKEN: token, GIT_COMMIT: 'abc1234', GIT_TERMINAL_PROMPT: '0' },
  });
  t.is(r.code, 0, r.stderr + r.stdout);
  t.regex(r.stderr, /remote: -----> /, 'the build streamed as remote: lines');
  t.regex(r.stdout, /"result"/);
  t.is((await rack.get('shop')).body, 'from ci');
  t.is((await rack.get('shop', '/sha')).body, 'abc1234');
});

test.serial('logs with follow=true stream lines as they happen until the client hangs up', async (t) => {
  // The head comes before any line: nothing pokes the app until the client has it.
  const res = await request(`http://127.0.0.1:${rack.httpPort}/api/v1/apps/shop/logs?lines=0&follow=true`, {
    headers: { host: 'rack.localhost', authorization: `Bearer ${admin}` },
  });
  t.is(res.statusCode, 200);
  t.regex(String(res.headers['content-type']), /application\/x-ndjson/);
  let seen = '';
  const poke = setInterval(() => void rack.get('shop', '/followed').catch(() => undefined), 300);
  try {
    for await (const chunk of res.body) {
      seen += String(chunk);
      if (seen.includes('path=\\"/followed\\"')) break;
    }
  } finally {
    clearInterval(poke);
    res.body.destroy();
  }
  const lines = events(seen.split('\n').slice(0, -1).join('\n')).map((e) => e['line'] as string);
  t.true(lines.some((l) => /rack\[router\]: method=GET path="\/followed"/.test(l)), lines.join('\n'));
});
