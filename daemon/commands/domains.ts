import { assertDomainClaim } from '../domain-ownership.js';
import { parseHostName } from '../host-name.js';
import type { Command } from './command.js';

export const domainsCommands: Command[] = [
  {
    name: 'domains',
    access: 'member',
    usage: 'domains [-a APP] [--json]',
    example: 'domains -a myapp',
    summary: 'list the host names an app answers on',
    app: true,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const app = await ctx.services.store.requireApp(ctx.app);
      const info = { default: ctx.services.supervisor.defaultHost(ctx.app), domains: app.domains ?? [] };
      if (ctx.flags['json']) return ctx.printJson(info);
      ctx.print(`${info.default} (default)`);
      for (const d of info.domains) ctx.print(d);
    },
  },
  {
    name: 'domains:add',
    access: 'member',
    usage: 'domains:add HOST [-a APP]',
    example: 'domains:add www.example.com -a myapp',
    summary: 'serve the app on HOST too (a host belongs to one app at a time)',
    app: true,
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args.join(' ') }),
    async run(ctx) {
      const host = parseHostName(ctx.args[0]!);
      const { domain, consoleHost } = ctx.services.config;
      await ctx.services.store.addDomain(ctx.app, host, (apps) => assertDomainClaim(host, ctx.app, { domain, consoleHost, apps }));
      await ctx.services.supervisor.publish(ctx.app);
      ctx.result({ host });
      ctx.print(`-----> Added ${host} to ${ctx.app}`);
      if ((await ctx.services.store.requireApp(ctx.app)).https?.auto === true && (await ctx.services.autoCerts.check(ctx.app)).includes(host)) {
        ctx.print(`       certs:auto is on: a certificate for ${host} is being ordered (see: certs -a ${ctx.app})`);
      }
    },
  },
  {
    name: 'domains:remove',
    access: 'member',
    usage: 'domains:remove HOST [-a APP]',
    example: 'domains:remove www.example.com -a myapp',
    summary: 'stop serving the app on HOST',
    app: true,
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args.join(' ') }),
    async run(ctx) {
      const host = ctx.args[0]!.toLowerCase();
      await ctx.services.store.removeDomain(ctx.app, host);
      await ctx.services.supervisor.publish(ctx.app);
      // rack holds certificates only for hosts it serves.
      await ctx.services.certs.remove(host, `domain removed from ${ctx.app}`);
      ctx.result({ host });
      ctx.print(`-----> Removed ${host} from ${ctx.app}`);
    },
  },
];
