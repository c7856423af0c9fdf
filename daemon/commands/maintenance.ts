import { createdBy } from '../access/principal.js';
import { fetchMaintenancePage } from '../maintenance-page-fetch.js';
import type { AppRecord } from '../store/records.js';
import { timestamp, type Command } from './command.js';

/** What `maintenance --json`, the API and the switches answer: one shape. */
function state(app: AppRecord): { app: string; maintenance: boolean; since: string | null; pageUrl: string | null } {
  const m = app.maintenance;
  return { app: app.name, maintenance: m !== undefined, since: m?.since ?? null, pageUrl: m?.pageUrl ?? null };
}

/**
 * Heroku's maintenance mode: the router answers every request of the app with a 503, a
 * Retry-After and a page, while its processes run on (a migration, a data fix). ACME challenges
 * are still answered, so certificates renew meanwhile.
 */
export const maintenanceCommands: Command[] = [
  {
    name: 'maintenance',
    access: 'member',
    usage: 'maintenance [-a APP] [--json]',
    example: 'maintenance -a myapp',
    summary: 'show whether the app is in maintenance mode',
    app: true,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const answer = state(await ctx.services.store.requireApp(ctx.app));
      if (ctx.flags['json']) return ctx.printJson(answer);
      if (!answer.maintenance) return ctx.print(`${ctx.app}: maintenance is off`);
      ctx.print(`${ctx.app}: maintenance is on since ${timestamp(answer.since)} (page: ${answer.pageUrl ?? "rack's own"})`);
    },
  },
  {
    name: 'maintenance:on',
    access: 'member',
    usage: 'maintenance:on [--page URL] [-a APP]',
    example: 'maintenance:on --page https://example.com/maintenance.html -a myapp',
    summary: 'answer every request with a 503 and a page (rack\'s, or the one at URL, fetched now); processes keep running',
    app: true,
    options: { page: { type: 'string' } },
    args: { min: 0, max: 0 },
    audit: (ctx) => ({ detail: typeof ctx.flags['page'] === 'string' ? `page ${ctx.flags['page'].slice(0, 200)}` : '' }),
    async run(ctx) {
      await ctx.services.store.requireApp(ctx.app);
      const pageUrl = typeof ctx.flags['page'] === 'string' ? ctx.flags['page'] : undefined;
      // Fetched before anything changes: a page that cannot be had leaves the app serving.
      const page = pageUrl === undefined ? undefined : await fetchMaintenancePage(pageUrl, ctx.services.config.fetchAllow);
      const record = await ctx.services.store.setMaintenance(ctx.app, {
        since: new Date().toISOString(),
        by: createdBy(ctx.principal),
        ...(pageUrl === undefined ? {} : { pageUrl, page }),
      });
      await ctx.services.supervisor.publish(ctx.app);
      ctx.result(state(record));
      ctx.print(`-----> Maintenance on for ${ctx.app}: requests get a 503 and ${pageUrl === undefined ? "rack's page" : `the page of ${pageUrl}`}; processes keep running`);
    },
  },
  {
    name: 'maintenance:off',
    access: 'member',
    usage: 'maintenance:off [-a APP]',
    example: 'maintenance:off -a myapp',
    summary: 'serve requests again',
    app: true,
    args: { min: 0, max: 0 },
    audit: () => ({ detail: '' }),
    async run(ctx) {
      const record = await ctx.services.store.setMaintenance(ctx.app, undefined);
      await ctx.services.supervisor.publish(ctx.app);
      ctx.result(state(record));
      ctx.print(`-----> Maintenance off for ${ctx.app}: requests reach its processes again`);
    },
  },
];
