import { createdBy } from '../access/principal.js';
import { paths } from '../config.js';
import { repoDir, showFile } from '../git/repo.js';
import { fetchMaintenancePage } from '../maintenance-page-fetch.js';
import type { AppRecord } from '../store/records.js';
import { timestamp, type Command, type CommandContext } from './command.js';

/** What `maintenance --json`, the API and the switches answer: one shape. */
function state(app: AppRecord): { app: string; maintenance: boolean; since: string | null; pageUrl: string | null } {
  const m = app.maintenance;
  return { app: app.name, maintenance: m !== undefined, since: m?.since ?? null, pageUrl: m?.pageUrl ?? null };
}

/**
 * app.json's `maintenance_page_url` (Heroku's field) in the commit that serves now; undefined when
 * there is none, or no commit to read it from (a release not yet made, a build gone with its repo).
 */
async function appJsonPageUrl(ctx: CommandContext, app: AppRecord): Promise<string | undefined> {
  const { store, config } = ctx.services;
  if (!app.currentRelease) return undefined;
  const release = await store.getRelease(app.name, app.currentRelease);
  if (!release) return undefined;
  // A promoted release runs another app's build, from that app's repository.
  const buildApp = release.promotedFrom?.buildApp ?? app.name;
  const build = await store.getBuild(buildApp, release.build);
  if (!build) return undefined;
  const text = await showFile(repoDir(paths.repos(config), buildApp), build.commit, 'app.json', {});
  if (text === undefined) return undefined;
  try {
    const url = (JSON.parse(text) as { maintenance_page_url?: unknown } | null)?.maintenance_page_url;
    return typeof url === 'string' && url !== '' ? url : undefined;
  } catch {
    return undefined;
  }
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
    // Without --page: app.json's maintenance_page_url, else rack's own page.
    example: 'maintenance:on --page https://example.com/maintenance.html -a myapp',
    summary: "answer every request with a 503 and a page (at URL or app.json's maintenance_page_url, fetched now; else rack's); processes keep running",
    app: true,
    options: { page: { type: 'string' } },
    args: { min: 0, max: 0 },
    audit: (ctx) => ({ detail: typeof ctx.flags['page'] === 'string' ? `page ${ctx.flags['page'].slice(0, 200)}` : '' }),
    async run(ctx) {
      const app = await ctx.services.store.requireApp(ctx.app);
      const pageUrl = typeof ctx.flags['page'] === 'string' ? ctx.flags['page'] : await appJsonPageUrl(ctx, app);
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
