import test from 'ava';
import { readFile } from 'node:fs/promises';
import { api, events } from './support/api-client.js';
import { commitFile, exec, keypair, RackDaemon } from './support/rack-daemon.js';

// Pipelines through a real rackd, Docker and the node-env fixture (GET /env/KEY answers a variable):
// `stage` is built by pushes; `prod` only ever gets what is promoted to it.
let rack: RackDaemon;
let dir: string;

interface Release {
  version: number;
  status: string;
  build: number;
  image: string;
  description: string;
  current: boolean;
}

const releases = async (app: string) => JSON.parse((await rack.ssh(['releases', '-a', app, '--json'])).stdout) as Release[];
const builds = async (app: string) => JSON.parse((await rack.ssh(['builds', '-a', app, '--json'])).stdout) as { id: number }[];
const current = async (app: string) => (await releases(app)).find((r) => r.current)!;
/** The image ID the engine has for a reference: what "the same image" means. */
const imageId = async (ref: string) => (await exec('docker', ['image', 'inspect', '--format', '{{.Id}}', ref])).stdout.trim();

async function ok(args: string[], opts: { key?: string } = {}): Promise<string> {
  const r = await rack.ssh(args, opts);
  if (r.code !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

test.before(async () => {
  // One release kept per app: pruning after staging moves on must still leave production its image.
  rack = await RackDaemon.create({ RACK_KEEP_RELEASES: '1' });
  dir = await rack.appRepo('node-env', 'stage');
  await ok(['apps:create', 'prod']);
  // Set before prod has any release: kept on its record, and what its first release runs with.
  await ok(['config:set', 'GREETING=from-prod', '-a', 'prod']);
  const push = await rack.push(dir);
  if (push.code !== 0) throw new Error(push.stderr);
  await ok(['config:set', 'GREETING=from-stage', '-a', 'stage']);
  await ok(['pipelines:create', 'shop']);
  await ok(['pipelines:add', 'stage', '--pipeline', 'shop', '--stage', 'staging']);
  await ok(['pipelines:add', 'prod', '--pipeline', 'shop', '--stage', 'production']);
});
test.after.always(async () => {
  await rack?.destroy();
});

test.serial('a deploy-only key of the staging app cannot promote into production', async (t) => {
  const key = await keypair(rack.work, 'stage-ci');
  const added = await rack.ssh(['keys:add', 'stage-ci', '--app', 'stage', '--deploy-only'], { input: await readFile(key.pub, 'utf8') });
  t.is(added.code, 0, added.stderr);
  const r = await rack.ssh(['pipelines:promote', '-a', 'stage'], { key: key.priv });
  t.not(r.code, 0);
  t.regex(r.stderr, /may not run pipelines:promote on prod: it has no right on prod/);
  t.deepEqual(await releases('prod'), []);
  const audit = JSON.parse(await ok(['audit', '--json', '-a', 'stage'])) as { action: string; outcome: string }[];
  t.true(audit.some((e) => e.action === 'pipelines:promote' && e.outcome === 'forbidden'));
});

test.serial('promote releases the staging image to production with production\'s config, and builds nothing', async (t) => {
  const stage = await current('stage');
  const buildsBefore = { stage: (await builds('stage')).length, prod: (await builds('prod')).length };
  const out = await ok(['pipelines:promote', '-a', 'stage']);
  t.regex(out, /Promoting stage v2 to prod/);
  t.regex(out, /Released v1 of prod/);

  const prod = await current('prod');
  t.is(prod.description, `Promote from stage v${stage.version}`);
  t.is(prod.status, 'succeeded');
  t.not(prod.image, stage.image, "the image goes under prod's own name");
  t.is(await imageId(prod.image), await imageId(stage.image), 'the same image');
  const info = JSON.parse(await ok(['releases:info', `v${prod.version}`, '-a', 'prod', '--json'])) as { promotedFrom?: { app: string; release: number; imageId: string } };
  t.like(info.promotedFrom, { app: 'stage', release: stage.version, imageId: await imageId(stage.image) });

  t.deepEqual({ stage: (await builds('stage')).length, prod: (await builds('prod')).length }, buildsBefore, 'no build ran');
  t.is((await rack.get('prod', '/env/GREETING')).body, 'from-prod');
  t.is((await rack.get('stage', '/env/GREETING')).body, 'from-stage');
  t.is((await rack.get('prod', '/')).body, 'build-one');
  const audit = JSON.parse(await ok(['audit', '--json', '-a', 'prod'])) as { action: string; detail: string; outcome: string }[];
  t.like(audit.find((e) => e.action === 'pipelines:promote'), { detail: `from stage v${stage.version}: v1`, outcome: 'ok' });

  const list = await ok(['pipelines']);
  t.regex(list, /staging\s+stage\s+v2/);
  t.regex(list, /production\s+prod\s+v1\s+Promote from stage v2/);
});

test.serial('pipelines:diff shows the commits staging runs that production does not', async (t) => {
  await commitFile(dir, 'server.js', (await readFile(`${dir}/server.js`, 'utf8')).replace("'build-one'", "'build-two'"), 'Say build-two');
  const push = await rack.push(dir);
  t.is(push.code, 0, push.stderr);
  const diff = await ok(['pipelines:diff', '-a', 'stage']);
  t.regex(diff, /1 commit\(s\) prod does not run yet:/);
  t.regex(diff, /[0-9a-f]{7} {2}Say build-two/);
});

test.serial("staging pruning its old images leaves production's promoted image", async (t) => {
  const prodImage = (await current('prod')).image;
  const firstStageImage = (await releases('stage')).at(-1)!.image;
  // RACK_KEEP_RELEASES=1: the push above (and this config change) prune stage's first image.
  await ok(['config:set', 'OTHER=1', '-a', 'stage']);
  t.is(await imageId(firstStageImage), '', "stage's own name for its first image is gone");
  t.not(await imageId(prodImage), '', 'prod still has it');
  await ok(['ps:restart', '-a', 'prod']);
  t.is((await rack.get('prod', '/')).body, 'build-one');

  // Promoting the new staging release moves prod on; a rollback to the promoted v1 still works.
  await ok(['pipelines:promote', '-a', 'stage', '--to', 'prod']);
  t.is((await rack.get('prod', '/')).body, 'build-two');
  t.is((await rack.get('prod', '/env/GREETING')).body, 'from-prod');
  // prod's own retention finds the promoted images by their name under rack/prod and prunes the old
  // one at its next release, once no draining process of v1 holds it.
  await rack.drained('prod');
  await ok(['config:set', 'OTHER=1', '-a', 'prod']);
  t.is(await imageId(prodImage), '', "prod's first promoted image is pruned once prod moved on");
  await ok(['apps:destroy', 'prod', '--confirm', 'prod']);
  const left = await exec('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}', 'rack/prod']);
  t.is(left.stdout.trim(), '', 'apps:destroy removes the promoted images too');
  t.not(await imageId((await current('stage')).image), '', "and leaves stage's");
});

test.serial('promote refuses apps outside the pipeline and the last stage without --to', async (t) => {
  // prod was destroyed above, and with it its place in the pipeline: a new prod joins again.
  await ok(['apps:create', 'prod']);
  t.regex((await rack.ssh(['pipelines:promote', '-a', 'stage'])).stderr, /shop has no app after staging/);
  await ok(['pipelines:add', 'prod', '--pipeline', 'shop', '--stage', 'production']);
  const last = await rack.ssh(['pipelines:promote', '-a', 'prod']);
  t.not(last.code, 0);
  t.regex(last.stderr, /last stage/);
  await ok(['apps:create', 'other']);
  const outside = await rack.ssh(['pipelines:promote', '-a', 'stage', '--to', 'other']);
  t.not(outside.code, 0);
  t.regex(outside.stderr, /other is not in pipeline shop/);
  const bad = await rack.ssh(['pipelines:add', 'other', '--pipeline', 'shop', '--stage', 'qa']);
  t.regex(bad.stderr, /--stage must be one of development, staging, production/);
});

test.serial('over the API: the pipeline listed, a promotion streamed, and a token of staging refused on production', async (t) => {
  const admin = await rack.createToken('pipelines-admin');
  const list = await api(rack, 'GET', '/api/v1/pipelines', { token: admin });
  t.is(list.status, 200, list.text);
  t.like((list.json as { name: string; apps: { app: string; stage: string }[] }[])[0], { name: 'shop', apps: [{ app: 'stage', stage: 'staging' }, { app: 'prod', stage: 'production' }] });

  const stageOnly = await rack.createToken('stage-only', ['--app', 'stage']);
  const refused = await api(rack, 'POST', '/api/v1/apps/stage/promotions', { token: stageOnly, body: {} });
  t.is(refused.status, 403, refused.text);
  t.deepEqual(await releases('prod'), []);

  const promoted = await api(rack, 'POST', '/api/v1/apps/stage/promotions', { token: admin, body: { to: ['prod'] } });
  t.is(promoted.status, 200, promoted.text);
  t.like(events(promoted.text).at(-1), { result: { promotions: [{ app: 'prod', release: 1, status: 'succeeded' }] } });
  t.is((await rack.get('prod', '/')).body, 'build-two');
});
