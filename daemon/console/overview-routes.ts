import type { Caller } from '../access/principal.js';
import { RackError } from '../rack-error.js';
import type { AppRecord, AuditEntry, BuildRecord, ReleaseRecord } from '../store/records.js';
import type { AddonRow } from './addons-view.js';
import type { AppPage } from './app-page.js';
import type { ConsoleCommands } from './console-commands.js';
import type { ConsoleRequest } from './console-request.js';
import type { HostCert } from './https-view.js';
import { CHART_POINTS, metricsTab, parseRange, type MetricsAnswer, type Range } from './metrics-view.js';
import { overviewTab, type OverviewView } from './overview-view.js';
import type { ProcessRow } from './processes-view.js';

const RECENT_CHANGES = 5;

/**
 * A part of a page the principal may not read (a deploy-only token and add-ons, metrics or the
 * audit log) is left out of the page rather than failing it: the command said no, the page says nothing.
 */
async function ifAllowed<T>(read: Promise<T>): Promise<T | undefined> {
  try {
    return await read;
  } catch (err) {
    if (RackError.from(err).code === 'forbidden') return undefined;
    throw err;
  }
}

/** The app's Overview (its landing page) and Metrics tab. */
export class OverviewRoutes {
  constructor(
    private readonly commands: ConsoleCommands,
    private readonly page: AppPage,
  ) {}

  metrics(c: Caller, app: string, range: Range): Promise<MetricsAnswer> {
    return this.commands.query<MetricsAnswer>(c, 'metrics', app, [], { since: range, points: String(CHART_POINTS) });
  }

  async overview(r: ConsoleRequest, app: string): Promise<void> {
    const c = r.caller;
    const range = parseRange(r.url.searchParams.get('range'));
    const q = this.commands;
    // Independent reads, made at once: the page waits for the slowest (ps asks Docker), not their sum.
    const [record, releases, builds, processes, addons, hosts, audit, metrics] = await Promise.all([
      q.query<AppRecord[]>(c, 'apps', '').then((apps) => apps.find((a) => a.name === app)),
      q.query<ReleaseRecord[]>(c, 'releases', app),
      q.query<BuildRecord[]>(c, 'builds', app),
      ifAllowed(q.query<ProcessRow[]>(c, 'ps', app)),
      ifAllowed(q.query<AddonRow[]>(c, 'addons', '')),
      ifAllowed(q.query<HostCert[]>(c, 'certs', app)),
      ifAllowed(q.query<AuditEntry[]>(c, 'audit', app, [], { num: String(RECENT_CHANGES) })),
      ifAllowed(this.metrics(c, app, range)),
    ]);
    const view: OverviewView = {
      app,
      ...(processes ? { processes } : {}),
      ...(record && record.currentRelease > 0 ? { current: releases.find((x) => x.version === record.currentRelease) } : {}),
      building: builds.filter((b) => b.status === 'building' || b.status === 'pending'),
      rollingOut: releases.filter((x) => x.status === 'pending'),
      ...(addons ? { addons: addons.filter((a) => a.attached.some((x) => x.app === app)) } : {}),
      ...(hosts ? { hosts } : {}),
      ...(audit ? { audit } : {}),
      range,
      ...(metrics ? { metrics } : {}),
    };
    this.page.tab(r, app, 'overview', 'Overview', overviewTab(view));
  }

  async metricsPage(r: ConsoleRequest, app: string): Promise<void> {
    const range = parseRange(r.url.searchParams.get('range'));
    this.page.tab(r, app, 'metrics', 'Metrics', metricsTab(app, range, await this.metrics(r.caller, app, range)));
  }
}
