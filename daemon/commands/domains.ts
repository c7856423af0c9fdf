import { isAppName } from '../app-name.js';
import { RackError } from '../rack-error.js';
import type { Command, CommandContext } from './command.js';

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** A DNS name of at least two labels, lower-cased, without the absolute-name dot. */
export function parseHostName(raw: string): string {
  const host = raw.toLowerCase().replace(/\.$/, '');
  const labels = host.split('.');
  if (host.length > 253 || labels.length < 2 || !labels.every((l) => LABEL.test(l))) {
    throw new RackError('bad_argument', `invalid host name ${JSON.stringify(raw.slice(0, 60))}: expected something like www.example.com`);
  }
  return host;
}

/** A host name a user may point at an app: lower-case DNS labels, at least two of them. */
export function assertHostName(raw: string, ctx: CommandContext): string {
  const host = parseHostName(raw);
  if (host === ctx.services.config.consoleHost) throw new RackError('bad_argument', `${host} is rack's own host name (RACK_CONSOLE_HOST)`);
  // APP.RACK_DOMAIN names are every app's default hosts; handing one to another app would steal it.
  const suffix = `.${ctx.services.config.domain}`;
  if (host.endsWith(suffix)) {
    const first = host.slice(0, -suffix.length);
    if (isAppName(first) && first !== ctx.app) {
      throw new RackError('bad_argument', `${host} is the default host of app ${first} (or may become one)`);
    }
    if (first === ctx.app) throw new RackError('bad_argument', `${host} is already ${ctx.app}'s default host`);
  }
  return host;
}

export const domainsCommands: Command[] = [
  {
    name: 'domains',
    access: 'member',
    usage: 'domains [-a APP] [--json]',
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
    summary: 'serve the app on HOST too (a host belongs to one app at a time)',
    app: true,
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args.join(' ') }),
    async run(ctx) {
      const host = assertHostName(ctx.args[0]!, ctx);
      await ctx.services.store.addDomain(ctx.app, host);
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
