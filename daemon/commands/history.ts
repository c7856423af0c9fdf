import { ago, table, type Command } from './command.js';

const seconds = (ms: number | null) => (ms === null ? '-' : `${(ms / 1000).toFixed(1)}s`);

/** The read-only history of an app: its builds and its releases. */
export const historyCommands: Command[] = [
  {
    name: 'builds',
    usage: 'builds [-a APP] [--json]',
    summary: "list an app's builds, newest first",
    app: true,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const builds = await ctx.services.store.listBuilds(ctx.app);
      if (ctx.flags['json']) return ctx.printJson(builds);
      if (builds.length === 0) return ctx.print(`${ctx.app} has no builds yet`);
      const rows = builds.map((b) => [`b${b.id}`, b.status, b.commit.slice(0, 7), ago(b.createdAt), seconds(b.durationMs), b.createdBy]);
      for (const line of table([['ID', 'STATUS', 'COMMIT', 'CREATED', 'TOOK', 'BY'], ...rows])) ctx.print(line);
    },
  },
  {
    name: 'releases',
    usage: 'releases [-a APP] [--json]',
    summary: "list an app's releases, newest first; the current one is marked",
    app: true,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const app = await ctx.services.store.requireApp(ctx.app);
      const releases = await ctx.services.store.listReleases(ctx.app);
      if (ctx.flags['json']) {
        return ctx.printJson(releases.map((r) => ({ ...r, current: r.version === app.currentRelease })));
      }
      if (releases.length === 0) return ctx.print(`${ctx.app} has no releases yet`);
      const rows = releases.map((r) => [
        `v${r.version}`,
        r.version === app.currentRelease ? 'current' : r.status === 'succeeded' ? '' : r.status,
        `b${r.build}`,
        r.description,
        r.createdBy,
        ago(r.createdAt),
      ]);
      for (const line of table([['VERSION', 'STATE', 'BUILD', 'DESCRIPTION', 'BY', 'CREATED'], ...rows])) ctx.print(line);
    },
  },
];
