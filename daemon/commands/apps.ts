import { assertAppName } from '../app-name.js';
import { table, type Command } from './command.js';

export const appsCommands: Command[] = [
  {
    name: 'apps',
    usage: 'apps [--json]',
    summary: 'list apps',
    app: false,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const apps = await ctx.services.store.listApps();
      if (ctx.flags['json']) return ctx.printJson(apps.map((a) => ({ ...a, url: ctx.services.supervisor.url(a.name) })));
      if (apps.length === 0) return ctx.print('no apps yet: push one with "git push rack main"');
      const rows = apps.map((a) => [a.name, a.currentRelease ? `v${a.currentRelease}` : '-', ctx.services.supervisor.url(a.name)]);
      for (const line of table([['NAME', 'RELEASE', 'URL'], ...rows])) ctx.print(line);
    },
  },
  {
    name: 'apps:create',
    usage: 'apps:create NAME',
    summary: 'create an app (a first push creates it too)',
    app: false,
    args: { min: 1, max: 1 },
    async run(ctx) {
      const name = assertAppName(ctx.args[0]!);
      await ctx.services.store.createApp(name);
      ctx.services.router.setApp(name, ctx.services.supervisor.hosts(name), []);
      ctx.print(`-----> Created ${name}`);
      ctx.print(`       git remote add rack ssh://git@HOST:${ctx.services.config.sshPort}/${name}`);
    },
  },
  {
    name: 'apps:info',
    usage: 'apps:info [-a APP] [--json]',
    summary: "show an app's release, URL and git remote",
    app: true,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const app = await ctx.services.store.requireApp(ctx.app);
      const info = {
        name: app.name,
        createdAt: app.createdAt,
        currentRelease: app.currentRelease ? `v${app.currentRelease}` : null,
        url: ctx.services.supervisor.url(app.name),
        gitRemote: `ssh://git@HOST:${ctx.services.config.sshPort}/${app.name}`,
      };
      if (ctx.flags['json']) return ctx.printJson(info);
      for (const line of table(Object.entries(info).map(([k, v]) => [`${k}:`, String(v ?? '-')]))) ctx.print(line);
    },
  },
];
