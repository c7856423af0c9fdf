import { keyHasApp } from '../access/access-policy.js';
import { maskConfig, seesConfigValues } from '../access/config-mask.js';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { assertNewAppName } from '../app-name.js';
import { paths } from '../config.js';
import { assertDefaultHostFree } from '../domain-ownership.js';
import { describePendingCheck } from '../git/push-check.js';
import { repoDir } from '../git/repo.js';
import { RackError } from '../rack-error.js';
import { removeCache } from '../runtime/disk-limit.js';
import { namedOrSelected } from './app-selection.js';
import { table, type Command } from './command.js';
import { textOutput } from '../user-output.js';
import { describeRouterTimeout } from './router.js';

/** The app's git remote as users write it: RACK_SSH_HOST (RACK_DOMAIN unless set) and the ssh port. */
function gitRemote(config: { sshHost: string; sshPort: number }, app: string): string {
  const host = config.sshHost.includes(':') ? `[${config.sshHost}]` : config.sshHost;
  return `ssh://git@${host}:${config.sshPort}/${app}`;
}

/** `apps:rename OLD NEW` or `apps:rename -a OLD NEW`. */
function renameNames(selected: string, args: string[]): { from: string; to: string } {
  const usage = 'apps:rename OLD NEW';
  if (args.length === 2) return { from: namedOrSelected(selected, args[0], usage), to: args[1]! };
  return { from: namedOrSelected(selected, undefined, usage), to: args[0]! };
}

export const appsCommands: Command[] = [
  {
    name: 'apps',
    access: 'checked-by-command',
    usage: 'apps [--json]',
    example: 'apps --json',
    summary: 'list apps',
    app: false,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const apps = (await ctx.services.store.listApps()).filter((a) => keyHasApp(ctx.principal, a.name));
      if (ctx.flags['json']) {
        // An app's config before its first release is on its record; a deploy-only key gets the keys only.
        const shown = (a: (typeof apps)[number]) => (a.config && !seesConfigValues(ctx.principal) ? { ...a, config: maskConfig(a.config) } : a);
        // Before the first release the record says 0; apps:info and the API say null.
        return ctx.printJson(apps.map((a) => ({ ...shown(a), currentRelease: a.currentRelease || null, url: ctx.services.supervisor.url(a.name) })));
      }
      if (apps.length === 0) return ctx.print('no apps yet: push one with "git push rack main"');
      const rows = apps.map((a) => [a.name, a.currentRelease ? `v${a.currentRelease}` : '-', ctx.services.supervisor.url(a.name)]);
      for (const line of table([['NAME', 'RELEASE', 'URL'], ...rows])) ctx.print(line);
    },
  },
  {
    name: 'apps:create',
    access: 'admin',
    usage: 'apps:create NAME',
    example: 'apps:create myapp',
    summary: 'create an app (a first push creates it too)',
    app: false,
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ app: ctx.args[0] ?? '', detail: '' }),
    async run(ctx) {
      const name = assertNewAppName(ctx.args[0]!);
      const { domain, consoleHost } = ctx.services.config;
      assertDefaultHostFree(name, { domain, consoleHost, apps: await ctx.services.store.listApps() });
      await ctx.services.store.createApp(name);
      await ctx.services.supervisor.publish(name, []);
      ctx.result({ name, url: ctx.services.supervisor.url(name) });
      ctx.print(`-----> Created ${name}`);
      ctx.print(`       git remote add rack ${gitRemote(ctx.services.config, name)}`);
    },
  },
  {
    name: 'apps:destroy',
    access: 'admin',
    usage: 'apps:destroy NAME|-a NAME --confirm NAME',
    example: 'apps:destroy myapp --confirm myapp',
    summary: "remove an app: its processes, containers, images, repo, cache and records",
    app: 'optional',
    options: { confirm: { type: 'string' } },
    args: { min: 0, max: 1 },
    audit: (ctx) => ({ app: ctx.args[0] ?? ctx.app, detail: '' }),
    async run(ctx) {
      const name = namedOrSelected(ctx.app, ctx.args[0], 'apps:destroy NAME --confirm NAME');
      if (ctx.flags['confirm'] !== name) {
        throw new RackError('bad_argument', `this destroys ${name} and everything of it; to go on, run: apps:destroy ${name} --confirm ${name}`);
      }
      await ctx.services.store.requireApp(name);
      await ctx.services.lock.run(name, async () => {
        const { runtime, supervisor, store, config, certs, addons } = ctx.services;
        const hosts = await certs.hostsOf(name);
        await supervisor.unpublish(name);
        // Add-ons are data: they leave the app's network and are kept, detached.
        for (const addon of await addons.forgetApp(name)) {
          if (addon.stillAttached.length > 0) ctx.print(`-----> Kept add-on ${addon.name}, still attached to ${addon.stillAttached.join(', ')}`);
          else ctx.print(`-----> Kept add-on ${addon.name}, now detached (an admin may attach it elsewhere, or addons:destroy ${addon.name} --confirm ${addon.name})`);
        }
        await runtime.removeApp(name);
        await rm(repoDir(paths.repos(config), name), { recursive: true, force: true });
        await removeCache(join(paths.cache(config), name));
        await store.destroyApp(name);
        await ctx.services.logs.remove(name);
        await ctx.services.drains.forgetApp(name);
        for (const host of hosts) await certs.remove(host, `app ${name} destroyed`);
      });
      ctx.result({ name, destroyed: true });
      ctx.print(`-----> Destroyed ${name}`);
    },
  },
  {
    name: 'apps:rename',
    access: 'admin',
    usage: 'apps:rename OLD NEW | -a OLD NEW',
    example: 'apps:rename myapp shop',
    summary: 'rename an app: its records, repository, images, processes and hosts follow',
    app: 'optional',
    args: { min: 1, max: 2 },
    audit: (ctx) => ({ app: renameNames(ctx.app, ctx.args).from, detail: `to ${ctx.args[ctx.args.length - 1] ?? ''}` }),
    async run(ctx) {
      const { from, to } = renameNames(ctx.app, ctx.args);
      const remote = gitRemote(ctx.services.config, to);
      await ctx.services.renames.rename(from, to, remote, textOutput(ctx.print));
      ctx.result({ name: to, renamedFrom: from, url: ctx.services.supervisor.url(to), gitRemote: remote });
      ctx.print(`-----> ${from} is now ${to}: ${ctx.services.supervisor.url(to)}`);
      ctx.print(`       git remote set-url rack ${remote}`);
    },
  },
  {
    name: 'apps:info',
    access: 'member',
    usage: 'apps:info [-a APP] [--json]',
    example: 'apps:info -a myapp',
    summary: "show an app's release, URL and git remote",
    app: true,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const app = await ctx.services.store.requireApp(ctx.app);
      const marker = (await ctx.services.store.listPushMarkers()).find((m) => m.app === app.name);
      const info = {
        name: app.name,
        createdAt: app.createdAt,
        // A number, as in `apps --json`, releases and the API; `v3` is for the eye only.
        currentRelease: app.currentRelease ?? null,
        url: ctx.services.supervisor.url(app.name),
        gitRemote: gitRemote(ctx.services.config, app.name),
        routerTimeout: describeRouterTimeout(app.routerTimeoutMs),
        // Only while a push's branch check is pending: a wedged state shows here instead of in a log.
        ...(marker ? { pushCheck: describePendingCheck(marker) } : {}),
      };
      if (ctx.flags['json']) return ctx.printJson(info);
      const shown = { ...info, currentRelease: info.currentRelease === null ? null : `v${info.currentRelease}` };
      for (const line of table(Object.entries(shown).map(([k, v]) => [`${k}:`, String(v ?? '-')]))) ctx.print(line);
    },
  },
];
