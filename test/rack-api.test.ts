import test from 'ava';
import { Validator } from '@seriousme/openapi-schema-validator';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { api, events } from './support/api-client.js';
import { freePort } from './support/free-port.js';
import { nextVersionSource } from './support/next-version.js';
import { RackDaemon } from './support/rack-daemon.js';
import { waitFor } from './support/router-processes.js';


// rack's own releases over the API, as a CI script or the Console uses them: a rackd started by
// bin/rackd (the launcher a switch needs), and a clone of this checkout with one more commit as
// the source. The last test updates and rolls back for real; the ones before change nothing.

interface Entry {
  id: number;
  kind: string;
  commit: string;
  status: string;
  failedStep: string | null;
  error: string | null;
  phases?: { name: string; ms: number }[];
}

let rack: RackDaemon;
let admin: string;
let dev: string;
let source: string;
let installed: string;
let next: string;


async function ledger(): Promise<Entry[]> {
  const r = await api(rack, 'GET', '/api/v1/rack/releases', { token: admin });
  if (r.status !== 200) throw new Error(`GET /rack/releases: ${r.status} ${r.text}`);
  return r.json as Entry[];
}

/** The ledger entry once it has ended, asked again and again (a switch makes rackd silent for a moment). */
async function finished(id: number): Promise<Entry> {
  let entry: Entry | undefined;
  await waitFor(
    `r${id} to finish`,
    async () => {
      const r = await api(rack, 'GET', `/api/v1/rack/releases/r${id}`, { token: admin }).catch(() => undefined);
      entry = r?.status === 200 ? (r.json as Entry) : undefined;
      return entry !== undefined && entry.status !== 'pending';
    },
    4 * 60_000,
  );
  return entry!;
}

test.before(async () => {
  ({ dir: source, installed, next } = await nextVersionSource());
  // A fixed ssh port: the rackd after a switch listens where the one before did (HTTP too, through the router).
  rack = await RackDaemon.create({ RACK_SSH_PORT: String(await freePort()), RACK_HTTPS_PORT: 'off' }, { launcher: true });
  const created = await rack.ssh(['apps:create', 'hello']);
  if (created.code !== 0) throw new Error(created.stderr);
  admin = await rack.createToken('ci');
  dev = await rack.createToken('dev', ['--app', 'hello']);
});

test.after.always(async () => {
  await rack?.destroy();
  if (source) await rm(join(source, '..'), { recursive: true, force: true });
});

test.serial('the rack routes are in the OpenAPI document, which stays valid', async (t) => {
  const r = await api(rack, 'GET', '/api/v1/openapi.json');
  t.is(r.status, 200);
  const doc = r.json as { paths: Record<string, Record<string, { responses: Record<string, { content: Record<string, unknown> }> }>> };
  t.true((await new Validator().validate(doc as Parameters<Validator['validate']>[0])).valid);
  t.truthy(doc.paths['/rack/rollback']?.['post']);
  t.truthy(doc.paths['/rack/releases/{release}']?.['get']);
  // An update streams; its check answers whole, as JSON.
  t.deepEqual(Object.keys(doc.paths['/rack/update']?.['post']?.responses['200']?.content ?? {}).sort(), ['application/json', 'application/x-ndjson']);
});

test.serial('a check answers JSON: a source with one more commit has a newer rack, and nothing changes', async (t) => {
  const r = await api(rack, 'POST', '/api/v1/rack/update', { token: admin, body: { ref: 'next', from: source, check: true } });
  t.is(r.status, 200, r.text);
  t.regex(String(r.headers['content-type']), /application\/json/);
  t.like(r.json, { upToDate: false, available: { commit: next }, running: { commit: installed }, ahead: 1, as: 'branch next' });
  const same = await api(rack, 'POST', '/api/v1/rack/update', { token: admin, body: { ref: installed, from: source, check: true } });
  t.like(same.json, { upToDate: true });
  t.deepEqual((await ledger()).map((e) => e.kind), ['install']);
});

test.serial('one ledger entry by its number: GET /rack/releases/{release}, and rack:releases:info', async (t) => {
  for (const id of ['1', 'r1']) {
    const r = await api(rack, 'GET', `/api/v1/rack/releases/${id}`, { token: admin });
    t.is(r.status, 200, r.text);
    t.like(r.json, { id: 1, kind: 'install', commit: installed, status: 'succeeded' });
  }
  const missing = await api(rack, 'GET', '/api/v1/rack/releases/r99', { token: admin });
  t.is(missing.status, 404);
  t.like(missing.json, { error: { code: 'no_such_release', message: 'no rack release r99' } });
  const info = await rack.ssh(['rack:releases:info', 'r1']);
  t.is(info.code, 0, info.stderr);
  t.regex(info.stdout, /^r1 install: /);
  t.regex(info.stdout, /Result: +succeeded/);
  t.regex(info.stdout, /Steps: +-/);
});

test.serial('tokens that are not an admin\'s get 403 on every rack change and on the ledger', async (t) => {
  for (const [method, path, body] of [
    ['POST', '/api/v1/rack/update', { from: source, check: true }],
    ['POST', '/api/v1/rack/update', { ref: 'next', from: source }],
    ['POST', '/api/v1/rack/rollback', {}],
    ['GET', '/api/v1/rack/releases/1', undefined],
  ] as [string, string, unknown][]) {
    const r = await api(rack, method, path, { token: dev, ...(body === undefined ? {} : { body }) });
    t.is(r.status, 403, `${method} ${path}: ${r.text}`);
    t.regex((r.json as { error: { message: string } }).error.message, /admin/);
  }
  t.deepEqual((await ledger()).map((e) => e.kind), ['install']);
});

test.serial('bad input is a 400 in one line, before anything is fetched', async (t) => {
  for (const [path, body, expected] of [
    ['/api/v1/rack/update', { ref: '../../etc', from: source }, /not a tag, branch or commit/],
    ['/api/v1/rack/update', { ref: '--upload-pack=touch', from: source, check: true }, /not a tag, branch or commit/],
    ['/api/v1/rack/update', { from: '-uhack' }, /not a repository URL/],
    ['/api/v1/rack/update', { from: 'ext::sh -c touch% /tmp/x', check: true }, /not a repository URL/],
    ['/api/v1/rack/update', { ref: 5 }, /body at \/ref must be string/],
    ['/api/v1/rack/update', { branch: 'main' }, /unknown field "branch"/],
    ['/api/v1/rack/rollback', { release: 'x1' }, /expected a rack release like r3/],
    ['/api/v1/rack/rollback', { release: 99 }, /no rack release r99/],
    ['/api/v1/rack/rollback', { release: 'r1' }, /r1 is .* which is what runs/],
  ] as [string, unknown, RegExp][]) {
    const r = await api(rack, 'POST', path, { token: admin, body });
    t.is(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
    const message = (r.json as { error: { message: string } }).error.message;
    t.regex(message, expected);
    t.false(message.includes('\n'));
  }
  const bad = await api(rack, 'GET', '/api/v1/rack/releases/x1', { token: admin });
  t.is(bad.status, 400);
  t.deepEqual((await ledger()).map((e) => e.kind), ['install']);
});

test.serial('an update over HTTP streams until the switch, and the ledger tells how it went; a rollback the same', async (t) => {
  const r = await api(rack, 'POST', '/api/v1/rack/update', { token: admin, body: { ref: 'next', from: source } });
  t.is(r.status, 200, r.text);
  const lines = events(r.text);
  const said = lines.flatMap((e) => (typeof e['line'] === 'string' ? [e['line']] : [])).join('\n');
  for (const step of ['Fetching next', 'Installing dependencies', 'Building', 'Running its start-up checks']) t.true(said.includes(`-----> ${step}`), step);
  const id = Number(/-----> r(\d+) switches now; this answer ends here/.exec(said)?.[1]);
  t.true(id > 1, said);
  t.deepEqual(lines.at(-1), { result: {} });

  const updated = await finished(id);
  t.like(updated, { kind: 'update', commit: next, status: 'succeeded', failedStep: null });
  t.deepEqual(updated.phases?.map((p) => p.name), ['fetch', 'checkout', 'dependencies', 'build', 'check', 'start']);
  const now = await api(rack, 'GET', '/api/v1/rack', { token: admin });
  t.like(now.json, { commit: next });

  const back = await api(rack, 'POST', '/api/v1/rack/rollback', { token: admin, body: { release: 1 } });
  t.is(back.status, 200, back.text);
  const backId = Number(/-----> r(\d+) switches now/.exec(back.text)?.[1]);
  t.is(backId, id + 1, back.text);
  t.like(await finished(backId), { kind: 'rollback', commit: installed, status: 'succeeded' });
  t.like((await api(rack, 'GET', '/api/v1/rack', { token: admin })).json, { commit: installed });
});
