import { authorize, keyHasApp } from '../access/access-policy.js';
import { createdBy } from '../access/principal.js';
import { isAppName } from '../app-name.js';
import { paths } from '../config.js';
import { nextStage, requireMember, servingRelease } from '../pipelines/promotion.js';
import { commitDiff, releaseSource, type CommitLine } from '../pipelines/release-commits.js';
import { RackError } from '../rack-error.js';
import { PIPELINE_STAGES, type PipelineMember, type PipelineStage } from '../store/records.js';
import { textOutput } from '../user-output.js';
import { namedOrSelected } from './app-selection.js';
import { table, type Command, type CommandContext } from './command.js';

/** Pipeline names follow app names' rule: they are shown beside them and typed the same way. */
function pipelineName(word: string): string {
  if (!isAppName(word)) throw new RackError('bad_argument', `invalid pipeline name ${JSON.stringify(word.slice(0, 40))}: use 1-30 lower-case letters, digits and single dashes, starting with a letter`);
  return word;
}

function stageOf(word: unknown): PipelineStage {
  if (typeof word !== 'string' || !(PIPELINE_STAGES as readonly string[]).includes(word)) {
    throw new RackError('bad_argument', `--stage must be one of ${PIPELINE_STAGES.join(', ')}`);
  }
  return word as PipelineStage;
}

/** A pipeline as the caller may see it: only the apps its key or token acts on. */
async function describe(ctx: CommandContext, name: string) {
  const { store } = ctx.services;
  const members = (await store.pipelines.members(name)).filter((m) => keyHasApp(ctx.principal, m.app));
  const apps = [];
  for (const m of members) {
    const app = await store.getApp(m.app);
    const release = app?.currentRelease ? await store.getRelease(m.app, app.currentRelease) : undefined;
    // The commit is the building app's (for a promoted release, the first app of the chain).
    const source = release ? await releaseSource(store, paths.repos(ctx.services.config), release) : undefined;
    apps.push({
      app: m.app,
      stage: m.stage,
      release: release ? release.version : null,
      description: release?.description ?? null,
      image: release?.promotedFrom?.imageId ?? release?.image ?? null,
      commit: source?.commit ?? null,
      createdAt: release?.createdAt ?? null,
    });
  }
  return { name, apps };
}

/** Heroku's rule: anyone may see a pipeline that holds one of its apps; admins see them all. */
async function visiblePipelines(ctx: CommandContext): Promise<string[]> {
  const { store } = ctx.services;
  const names: string[] = [];
  for (const p of await store.pipelines.list()) {
    const members = await store.pipelines.members(p.name);
    if (ctx.principal.role === 'admin' || members.some((m) => keyHasApp(ctx.principal, m.app))) names.push(p.name);
  }
  return names;
}

function printPipeline(ctx: CommandContext, view: Awaited<ReturnType<typeof describe>>): void {
  ctx.print(`=== ${view.name}`);
  if (view.apps.length === 0) return ctx.print('  (no apps: pipelines:add APP --pipeline NAME --stage STAGE)');
  const rows = view.apps.map((a) => [`  ${a.stage}`, a.app, a.release === null ? '-' : `v${a.release}`, a.description ?? '']);
  for (const line of table([['  STAGE', 'APP', 'RELEASE', 'DESCRIPTION'], ...rows])) ctx.print(line);
}

/** The app an argument names, once the caller may change it (a full key of it) and it exists. */
async function namedApp(ctx: CommandContext, action: string, usage: string): Promise<string> {
  const app = namedOrSelected(ctx.app, ctx.args[0], usage);
  authorize(ctx.principal, 'member', action, app);
  await ctx.services.store.requireApp(app);
  return app;
}

function commitLine(c: CommitLine): string {
  return `${c.commit.slice(0, 7)}  ${c.subject.slice(0, 72)}  (${c.author.slice(0, 40)})`;
}

/** Pipelines: apps that run one build in turn; promoting releases the same image to the next stage. */
export const pipelinesCommands: Command[] = [
  {
    name: 'pipelines',
    access: 'checked-by-command',
    usage: 'pipelines [--json]',
    example: 'pipelines',
    summary: 'list the pipelines: each stage, its apps and their current release',
    app: false,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const views = [];
      for (const name of await visiblePipelines(ctx)) views.push(await describe(ctx, name));
      if (ctx.flags['json']) return ctx.printJson(views);
      if (views.length === 0) return ctx.print('no pipelines yet: pipelines:create NAME');
      for (const view of views) printPipeline(ctx, view);
    },
  },
  {
    name: 'pipelines:info',
    access: 'checked-by-command',
    usage: 'pipelines:info NAME [--json]',
    example: 'pipelines:info shop',
    summary: "a pipeline's stages, apps and current releases",
    app: false,
    json: true,
    args: { min: 1, max: 1 },
    async run(ctx) {
      const name = pipelineName(ctx.args[0]!);
      // Not found and not yours read the same: names of others' pipelines are not given away.
      if (!(await visiblePipelines(ctx)).includes(name)) throw new RackError('no_such_pipeline', `no pipeline named "${name}"`);
      const view = await describe(ctx, name);
      if (ctx.flags['json']) return ctx.printJson(view);
      printPipeline(ctx, view);
    },
  },
  {
    // Heroku lets whoever may create apps create pipelines; in rack that is an admin.
    name: 'pipelines:create',
    access: 'admin',
    usage: 'pipelines:create NAME',
    example: 'pipelines:create shop',
    summary: 'create a pipeline (then pipelines:add its apps)',
    app: false,
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args[0] ?? '' }),
    async run(ctx) {
      const name = pipelineName(ctx.args[0]!);
      await ctx.services.store.pipelines.create(name, createdBy(ctx.principal));
      ctx.result({ name });
      ctx.print(`-----> Created pipeline ${name}`);
      ctx.print(`       add apps with: pipelines:add APP --pipeline ${name} --stage ${PIPELINE_STAGES.join('|')}`);
    },
  },
  {
    name: 'pipelines:destroy',
    access: 'admin',
    usage: 'pipelines:destroy NAME',
    example: 'pipelines:destroy shop',
    summary: 'remove a pipeline (its apps stay, out of any pipeline)',
    app: false,
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args[0] ?? '' }),
    async run(ctx) {
      const name = pipelineName(ctx.args[0]!);
      const members = await ctx.services.store.pipelines.destroy(name);
      ctx.result({ name, destroyed: true });
      ctx.print(`-----> Destroyed pipeline ${name}${members.length ? `; ${members.map((m) => m.app).join(', ')} left it` : ''}`);
    },
  },
  {
    // The app is named as an argument (Heroku's form), so its right is checked here: a full key of it.
    name: 'pipelines:add',
    access: 'checked-by-command',
    usage: 'pipelines:add APP|-a APP --pipeline NAME --stage development|staging|production',
    example: 'pipelines:add -a myapp --pipeline shop --stage staging',
    summary: 'put an app at a stage of a pipeline (or move it to another stage)',
    app: 'optional',
    options: { pipeline: { type: 'string' }, stage: { type: 'string' } },
    args: { min: 0, max: 1 },
    audit: (ctx) => ({ app: ctx.args[0] ?? ctx.app, detail: `${String(ctx.flags['pipeline'])} ${String(ctx.flags['stage'])}` }),
    async run(ctx) {
      const app = await namedApp(ctx, 'pipelines:add', 'pipelines:add APP|-a APP --pipeline NAME --stage STAGE');
      if (typeof ctx.flags['pipeline'] !== 'string') throw new RackError('bad_argument', 'say which pipeline: --pipeline NAME');
      const name = pipelineName(ctx.flags['pipeline']);
      const stage = stageOf(ctx.flags['stage']);
      await ctx.services.store.pipelines.add(name, app, stage);
      ctx.result({ app, pipeline: name, stage });
      ctx.print(`-----> ${app} is at ${stage} in ${name}`);
    },
  },
  {
    name: 'pipelines:remove',
    access: 'checked-by-command',
    usage: 'pipelines:remove APP|-a APP',
    example: 'pipelines:remove -a myapp',
    summary: 'take an app out of its pipeline',
    app: 'optional',
    args: { min: 0, max: 1 },
    audit: (ctx) => ({ app: ctx.args[0] ?? ctx.app, detail: '' }),
    async run(ctx) {
      const app = await namedApp(ctx, 'pipelines:remove', 'pipelines:remove APP|-a APP');
      const member = await ctx.services.store.pipelines.remove(app);
      ctx.result({ app, pipeline: member.pipeline, removed: true });
      ctx.print(`-----> ${app} left pipeline ${member.pipeline}`);
    },
  },
  {
    name: 'pipelines:promote',
    access: 'deploy',
    usage: 'pipelines:promote -a APP [--to APP ...]',
    example: 'pipelines:promote -a myapp',
    summary: "release APP's image to the next stage's apps (or --to ones), each with its own config: no build",
    app: true,
    options: { to: { type: 'string', multiple: true } },
    args: { min: 0, max: 0 },
    audit: (ctx) => ({ detail: `to ${([] as unknown[]).concat(ctx.flags['to'] ?? 'next stage').join(' ')}` }),
    async run(ctx) {
      const to = ([] as unknown[]).concat(ctx.flags['to'] ?? []).filter((x): x is string => typeof x === 'string');
      for (const name of to) if (!isAppName(name)) throw new RackError('bad_app_name', `--to ${JSON.stringify(name.slice(0, 40))} is not an app name`);
      const out = textOutput(ctx.print);
      const { source, outcomes } = await ctx.services.promotion.promote({ source: ctx.app, to, principal: ctx.principal, keyName: createdBy(ctx.principal) }, out);
      // Each target's own audit shows who released into it, from where (the command's entry is the source's).
      for (const o of outcomes) {
        const detail = `from ${source.app} v${source.version}${o.release === null ? '' : `: v${o.release}`}`;
        await ctx.services.audit.record(ctx.caller, { app: o.app, action: 'pipelines:promote', detail, outcome: o.status === 'succeeded' ? 'ok' : 'deploy_failed' });
      }
      ctx.result({ source: { app: source.app, release: source.version }, promotions: outcomes });
      const failed = outcomes.filter((o) => o.status === 'failed');
      if (failed.length > 0) {
        throw new RackError('deploy_failed', `promotion of ${source.app} v${source.version} failed on ${failed.map((o) => o.app).join(', ')}; the others: ${outcomes.filter((o) => o.status === 'succeeded').map((o) => `${o.app} v${o.release}`).join(', ') || 'none'}`);
      }
      out.header(`Promoted ${source.app} v${source.version} to ${outcomes.map((o) => `${o.app} (v${o.release})`).join(', ')}`);
    },
  },
  {
    name: 'pipelines:diff',
    access: 'deploy',
    usage: 'pipelines:diff -a APP [--json]',
    example: 'pipelines:diff -a myapp',
    summary: "the commits between APP's release and the next stage's apps'",
    app: true,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const { store, config } = ctx.services;
      const member = await requireMember(store, ctx.app);
      const targets: PipelineMember[] = await nextStage(store, member);
      for (const t of targets) authorize(ctx.principal, 'deploy', 'pipelines:diff', t.app);
      const reposRoot = paths.repos(config);
      const from = await releaseSource(store, reposRoot, await servingRelease(store, ctx.app));
      if (!from) throw new RackError('no_such_build', `the build of ${ctx.app}'s release is gone`);
      const diffs = [];
      for (const t of targets) {
        const release = await store.getApp(t.app).then((a) => (a?.currentRelease ? store.getRelease(t.app, a.currentRelease) : undefined));
        const to = release ? await releaseSource(store, reposRoot, release) : undefined;
        diffs.push({ app: t.app, stage: t.stage, release: release?.version ?? null, diff: to ? await commitDiff(from, to) : null });
      }
      if (ctx.flags['json']) return ctx.printJson({ app: ctx.app, release: from.release, commit: from.commit, targets: diffs });
      for (const d of diffs) {
        ctx.print(`=== ${ctx.app} v${from.release} (${from.commit.slice(0, 7)}) against ${d.app} ${d.release === null ? '(nothing released)' : `v${d.release}`} at ${d.stage}`);
        if (!d.diff) ctx.print(`  ${d.app} runs nothing yet: everything in ${ctx.app} is new to it`);
        else if (d.diff.kind === 'same') ctx.print('  the same commit: nothing to promote');
        else if (d.diff.kind === 'unrelated') {
          ctx.print('  no shared history; each runs:');
          ctx.print(`  ${ctx.app}: ${d.diff.from ? commitLine(d.diff.from) : from.commit.slice(0, 7)}`);
          ctx.print(`  ${d.app}: ${d.diff.to ? commitLine(d.diff.to) : '(commit not found)'}`);
        } else {
          ctx.print(d.diff.commits.length ? `  ${d.diff.commits.length} commit(s) ${d.app} does not run yet:` : `  ${d.app} runs everything ${ctx.app} does`);
          for (const c of d.diff.commits) ctx.print(`  ${commitLine(c)}`);
          if (d.diff.behind.length) ctx.print(`  ${d.app} runs ${d.diff.behind.length} commit(s) ${ctx.app} does not (a promotion would drop them)`);
        }
      }
    },
  },
];
