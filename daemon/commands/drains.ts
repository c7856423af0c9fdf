import { shownUrl } from '../drains/drain-destination.js';
import { timestamp, type Command } from './command.js';

export const drainsCommands: Command[] = [
  {
    name: 'drains',
    access: 'deploy',
    usage: 'drains [-a APP] [--json]',
    example: 'drains -a myapp',
    summary: "list an app's log drains: token, lines sent and dropped since rackd started, the last error",
    app: true,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      await ctx.services.store.requireApp(ctx.app);
      const drains = (await ctx.services.drains.list(ctx.app)).map((d) => ({ ...d, url: shownUrl(d.url) }));
      if (ctx.flags['json']) return ctx.printJson(drains);
      if (drains.length === 0) return ctx.print(`${ctx.app} has no drains (drains:add URL adds one)`);
      for (const d of drains) {
        ctx.print(`${d.url} (${d.token})`);
        ctx.print(`       id ${d.id}  sent ${d.sent}  dropped ${d.dropped}`);
        if (d.lastError !== undefined) ctx.print(`       last error ${timestamp(d.lastErrorAt ?? null)}: ${d.lastError}`);
      }
    },
  },
  {
    name: 'drains:add',
    access: 'deploy',
    usage: 'drains:add URL [-a APP]',
    example: 'drains:add syslog+tls://logs.example.com:6514 -a myapp',
    summary: "send the app's log lines to URL: https://... (Heroku's logplex format), syslog+tls://HOST:PORT or syslog://HOST:PORT",
    app: true,
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: shownUrl(ctx.args[0]!) }),
    async run(ctx) {
      await ctx.services.store.requireApp(ctx.app);
      const d = await ctx.services.drains.add(ctx.app, ctx.args[0]!, ctx.principal.name);
      ctx.result({ id: d.id, url: shownUrl(d.url), token: d.token });
      ctx.print(`-----> Successfully added drain ${shownUrl(d.url)}`);
      ctx.print(`       token ${d.token} (sent as Logplex-Drain-Token, and as HOSTNAME on syslog drains)`);
    },
  },
  {
    name: 'drains:remove',
    access: 'deploy',
    usage: 'drains:remove URL|ID|TOKEN [-a APP]',
    example: 'drains:remove d1 -a myapp',
    summary: 'stop sending the app\'s log lines to a drain',
    app: true,
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: shownUrl(ctx.args[0]!) }),
    async run(ctx) {
      await ctx.services.store.requireApp(ctx.app);
      const d = await ctx.services.drains.remove(ctx.app, ctx.args[0]!);
      ctx.result({ id: d.id, url: shownUrl(d.url), removed: true });
      ctx.print(`-----> Successfully removed drain ${shownUrl(d.url)}`);
    },
  },
];
