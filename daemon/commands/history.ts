import { createdBy } from '../access/principal.js';
import { join } from 'node:path';
import { paths } from '../config.js';
import { repoDir } from '../git/repo.js';
import { RackError } from '../rack-error.js';
import { removeCache } from '../runtime/disk-limit.js';
import { textOutput } from '../user-output.js';
import { maskConfig, seesConfigValues } from '../access/config-mask.js';
import type { BuildRecord } from '../store/records.js';
import { configRedaction } from './config-redaction.js';
import { timestamp, parseNumber, table, type Command, type CommandContext } from './command.js';

async function requireBuild(ctx: CommandContext): Promise<BuildRecord> {
  const id = parseNumber(ctx.args[0]!, 'b');
  await ctx.services.store.requireApp(ctx.app);
  const build = await ctx.services.store.getBuild(ctx.app, id);
  if (!build) throw new RackError('no_such_build', `${ctx.app} has no build b${id}`);
  return build;
}

/** A build as the key may read it: its error may quote a config value (a BUILDPACK_URL with a token). */
function readableBuild(build: BuildRecord, redact: (text: string) => string): BuildRecord {
  return build.error === null ? build : { ...build, error: redact(build.error) };
}

const seconds = (ms: number | null) => (ms === null ? '-' : `${(ms / 1000).toFixed(1)}s`);

/**
 * An app's builds and releases: the history a deploy-only key may read (config values masked),
 * and the member commands that make builds or clear their cache.
 */
export const historyCommands: Command[] = [
  {
    name: 'builds',
    access: 'deploy',
    usage: 'builds [-a APP] [--json]',
    example: 'builds -a myapp',
    summary: "list an app's builds, newest first",
    app: true,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const builds = await ctx.services.store.listBuilds(ctx.app);
      const redact = await configRedaction(ctx);
      if (ctx.flags['json']) return ctx.printJson(builds.map((b) => readableBuild(b, redact)));
      if (builds.length === 0) return ctx.print(`${ctx.app} has no builds yet`);
      const rows = builds.map((b) => [`b${b.id}`, b.status, b.commit.slice(0, 7), timestamp(b.createdAt), seconds(b.durationMs), b.createdBy]);
      for (const line of table([['ID', 'STATUS', 'COMMIT', 'CREATED', 'TOOK', 'BY'], ...rows])) ctx.print(line);
    },
  },
  {
    name: 'builds:create',
    access: 'member',
    usage: 'builds:create [--deploy] [--no-cache] [-a APP]',
    example: 'builds:create --deploy -a myapp',
    summary: 'build the pushed branch head again; --deploy releases it too',
    app: true,
    options: { deploy: { type: 'boolean' }, 'no-cache': { type: 'boolean' } },
    args: { min: 0, max: 0 },
    audit: () => ({ detail: '' }),
    async run(ctx) {
      const { config, pipeline } = ctx.services;
      const build = await pipeline.rebuild(
        {
          app: ctx.app,
          repo: repoDir(paths.repos(config), ctx.app),
          keyName: createdBy(ctx.principal),
          deploy: ctx.flags['deploy'] === true,
          noCache: ctx.flags['no-cache'] === true,
        },
        textOutput(ctx.print),
      );
      ctx.result({ build: build.id, status: build.status, deployed: ctx.flags['deploy'] === true });
      if (ctx.flags['deploy'] !== true) ctx.print(`-----> Built b${build.id}; release it with: builds:deploy b${build.id}`);
    },
  },
  {
    name: 'builds:deploy',
    access: 'member',
    usage: 'builds:deploy bN [-a APP]',
    example: 'builds:deploy b7 -a myapp',
    summary: 'release a build already made (with the config and add-ons of now)',
    app: true,
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args[0] ?? '' }),
    async run(ctx) {
      const id = parseNumber(ctx.args[0]!, 'b');
      const release = await ctx.services.pipeline.deployBuild({ app: ctx.app, build: id, keyName: createdBy(ctx.principal) }, textOutput(ctx.print));
      const final = (await ctx.services.store.getRelease(ctx.app, release.version)) ?? release;
      ctx.result({ build: id, release: final.version, status: final.status });
    },
  },
  {
    name: 'builds:cache:clear',
    access: 'member',
    usage: 'builds:cache:clear [-a APP]',
    example: 'builds:cache:clear -a myapp',
    summary: "empty the app's build cache (the next build starts cold)",
    app: true,
    args: { min: 0, max: 0 },
    audit: () => ({ detail: '' }),
    async run(ctx) {
      await ctx.services.store.requireApp(ctx.app);
      await ctx.services.lock.run(ctx.app, async () => {
        await removeCache(join(paths.cache(ctx.services.config), ctx.app));
      });
      ctx.result({ cleared: true });
      ctx.print(`-----> Cleared the build cache of ${ctx.app}`);
    },
  },
  {
    name: 'builds:info',
    access: 'deploy',
    usage: 'builds:info bN [-a APP] [--json]',
    example: 'builds:info b3 -a myapp',
    summary: 'show one build',
    app: true,
    json: true,
    args: { min: 1, max: 1 },
    async run(ctx) {
      const build = readableBuild(await requireBuild(ctx), await configRedaction(ctx));
      if (ctx.flags['json']) return ctx.printJson(build);
      const rows = [
        ['Build:', `b${build.id}`],
        ['Status:', build.status + (build.error ? `: ${build.error}` : '')],
        ['Commit:', build.commit],
        ['Buildpacks:', build.buildpacks.join(', ') || '-'],
        ['Processes:', Object.entries(build.processTypes).map(([t, c]) => `${t}: ${c}`).join('; ') || '-'],
        ['Image:', build.image ?? '-'],
        ['By:', build.createdBy],
        ['Created:', timestamp(build.createdAt)],
        ['Took:', seconds(build.durationMs)],
      ];
      for (const line of table(rows)) ctx.print(line);
    },
  },
  {
    name: 'builds:logs',
    access: 'deploy',
    usage: 'builds:logs bN [-a APP]',
    example: 'builds:logs b3 -a myapp',
    summary: "print a build's stored output",
    app: true,
    args: { min: 1, max: 1 },
    async run(ctx) {
      const build = await requireBuild(ctx);
      const log = await ctx.services.store.getBuildLog(ctx.app, build.id);
      if (log === undefined) return ctx.print(`b${build.id} has no stored output (status: ${build.status})`);
      ctx.print((await configRedaction(ctx))(log));
    },
  },
  {
    name: 'releases',
    access: 'deploy',
    usage: 'releases [-a APP] [--json]',
    example: 'releases -a myapp',
    summary: "list an app's releases, newest first; the current one is marked",
    app: true,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const app = await ctx.services.store.requireApp(ctx.app);
      const releases = await ctx.services.store.listReleases(ctx.app);
      if (ctx.flags['json']) {
        const values = seesConfigValues(ctx.principal);
        const redact = await configRedaction(ctx);
        return ctx.printJson(
          releases.map((r) => ({
            ...r,
            config: values ? r.config : maskConfig(r.config),
            error: r.error === null ? null : redact(r.error),
            current: r.version === app.currentRelease,
          })),
        );
      }
      if (releases.length === 0) return ctx.print(`${ctx.app} has no releases yet`);
      const rows = releases.map((r) => [
        `v${r.version}`,
        r.version === app.currentRelease ? 'current' : r.status === 'succeeded' ? '' : r.status,
        // A promoted release runs another app's build.
        `${r.promotedFrom ? `${r.promotedFrom.buildApp}:` : ''}b${r.build}`,
        r.description,
        r.createdBy,
        timestamp(r.createdAt),
      ]);
      for (const line of table([['VERSION', 'STATE', 'BUILD', 'DESCRIPTION', 'BY', 'CREATED'], ...rows])) ctx.print(line);
    },
  },
];
