import { APP_EVENT_KINDS } from '../app-events.js';
import { shownUrl } from '../drains/drain-destination.js';
import { RackError } from '../rack-error.js';
import { table, timestamp, type Command } from './command.js';

export const webhooksCommands: Command[] = [
  {
    name: 'webhooks',
    access: 'deploy',
    usage: 'webhooks [-a APP] [--json]',
    example: 'webhooks -a myapp',
    summary: "list an app's webhooks and the events each receives",
    app: true,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      await ctx.services.store.requireApp(ctx.app);
      // The secret is shown once, at webhooks:add, never again.
      const hooks = (await ctx.services.webhooks.list(ctx.app)).map((h) => ({ id: h.id, url: shownUrl(h.url), events: h.events, createdAt: h.createdAt, createdBy: h.createdBy }));
      if (ctx.flags['json']) return ctx.printJson(hooks);
      if (hooks.length === 0) return ctx.print(`${ctx.app} has no webhooks (webhooks:add URL adds one)`);
      for (const line of table([['ID', 'URL', 'EVENTS'], ...hooks.map((h) => [h.id, h.url, h.events.join(',')])])) ctx.print(line);
    },
  },
  {
    name: 'webhooks:add',
    access: 'deploy',
    usage: `webhooks:add URL [--events ${APP_EVENT_KINDS.join(',')}] [--secret-stdin] [-a APP]`,
    example: 'webhooks:add https://hooks.example.com/rack -a myapp',
    summary: 'POST the app\'s events to URL as JSON signed with HMAC-SHA256 (header Rack-Webhook-Hmac-SHA256); the secret is shown once',
    app: true,
    options: { events: { type: 'string' }, 'secret-stdin': { type: 'boolean' } },
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: `${shownUrl(ctx.args[0]!)}${typeof ctx.flags['events'] === 'string' ? ` events=${ctx.flags['events'].slice(0, 100)}` : ''}` }),
    async run(ctx) {
      await ctx.services.store.requireApp(ctx.app);
      const rawEvents = ctx.flags['events'];
      const events = typeof rawEvents === 'string' ? rawEvents.split(',').map((e) => e.trim()).filter((e) => e !== '') : [];
      let secret: string | undefined;
      if (ctx.flags['secret-stdin'] === true) {
        secret = (await ctx.readInput(4096)).trim();
        if (secret.length < 16 || !/^[!-~]+$/.test(secret)) throw new RackError('bad_argument', 'the secret on stdin must be 16 to 4096 printable characters, no spaces');
      }
      const hook = await ctx.services.webhooks.add({ app: ctx.app, url: ctx.args[0]!, events, ...(secret === undefined ? {} : { secret }), createdBy: ctx.principal.name });
      ctx.result({ id: hook.id, url: shownUrl(hook.url), events: hook.events, ...(secret === undefined ? { secret: hook.secret } : {}) });
      ctx.print(`-----> Added webhook ${hook.id} for ${hook.events.join(',')}`);
      if (secret === undefined) ctx.print(`       secret ${hook.secret} (shown once: it signs each delivery, Rack-Webhook-Hmac-SHA256 = base64 HMAC-SHA256 of the body)`);
    },
  },
  {
    name: 'webhooks:remove',
    access: 'deploy',
    usage: 'webhooks:remove ID [-a APP]',
    example: 'webhooks:remove w1 -a myapp',
    summary: 'stop sending the app\'s events to a webhook',
    app: true,
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args[0]!.slice(0, 100) }),
    async run(ctx) {
      await ctx.services.store.requireApp(ctx.app);
      const hook = await ctx.services.webhooks.remove(ctx.app, ctx.args[0]!);
      ctx.result({ id: hook.id, removed: true });
      ctx.print(`-----> Removed webhook ${hook.id}`);
    },
  },
  {
    name: 'webhooks:deliveries',
    access: 'deploy',
    usage: 'webhooks:deliveries [-n N] [-a APP] [--json]',
    example: 'webhooks:deliveries -n 10 -a myapp',
    summary: "the app's latest webhook deliveries: event, status, attempts, the receiver's answer",
    app: true,
    json: true,
    options: { num: { type: 'string', short: 'n' } },
    args: { min: 0, max: 0 },
    async run(ctx) {
      await ctx.services.store.requireApp(ctx.app);
      const raw = (ctx.flags['num'] as string | undefined) ?? '20';
      if (!/^[1-9][0-9]{0,2}$/.test(raw)) throw new RackError('bad_argument', `-n takes a number from 1 to 999, got ${JSON.stringify(raw.slice(0, 20))}`);
      const list = await ctx.services.webhooks.deliveries(ctx.app, Number(raw));
      if (ctx.flags['json']) return ctx.printJson(list);
      if (list.length === 0) return ctx.print(`${ctx.app} has no webhook deliveries yet`);
      const rows = list.map((d) => [timestamp(d.updatedAt), `${d.event}:${d.action}`, d.status, String(d.attempts), d.lastCode === undefined ? '-' : String(d.lastCode), d.webhook.slice(0, 8), (d.lastAnswer ?? '').replace(/\s+/g, ' ').slice(0, 80)]);
      for (const line of table([['WHEN', 'EVENT', 'STATUS', 'TRIES', 'CODE', 'WEBHOOK', 'ANSWER'], ...rows])) ctx.print(line);
    },
  },
];
