
import { assertAppName } from '../app-name.js';
import type { Caller } from '../access/principal.js';
import { paths, type RackConfig } from '../config.js';
import { repoDir } from '../git/repo.js';
import { RackError } from '../rack-error.js';
import { assertConfigValue } from '../release/config-vars.js';
import { resolveFormation } from '../release/formation.js';
import type { JobView } from '../cron/scheduled-jobs.js';
import type { AppRecord, AuditEntry, BuildRecord, ReleaseRecord } from '../store/records.js';
import { AddonsRoutes } from './addons-routes.js';
import { auditTable } from './audit-view.js';
import { buildLog, buildsList, buildsTab } from './builds-view.js';
import type { CommitSubjects } from './commit-subjects.js';
import { startAction } from './console-action.js';
import type { ConsoleCommands, LineSink } from './console-commands.js';
import type { ConsoleEvents } from './console-events.js';
import type { AppPage, Touch } from './app-page.js';
import { readForm, redirect, SECURITY_HEADERS, sendHtml, type ConsoleRequest } from './console-request.js';
import { deploysPanel, deploysTab, type DeploysView, type RepoInfo, type ReviewAppRow } from './deploys-view.js';
import { domainsPanel, domainsTab } from './domains-view.js';
import { httpsPanel, type HostCert, type HttpsView } from './https-view.js';
import { environmentPanel, environmentTab, NAME_RULE } from './environment-view.js';
import { html, type SafeHtml } from './html-template.js';
import { destroyPage } from './apps-view.js';
import { actionBox, appPath, page, type AppTab } from './layout-view.js';
import { logQueryFlags, logsTab, readLogSearch } from './logs-view.js';
import { cronTab } from './cron-view.js';
import { OverviewRoutes } from './overview-routes.js';
import { processesPanel, processesTab, type ProcessRow } from './processes-view.js';
import { releasesList, releasesTab, type ReleaseRow, type ReleasesView } from './releases-view.js';
import { serveEvents } from './event-stream.js';

/** `releases:info --json`. */
type ReleaseInfo = ReleaseRecord & { formation: Record<string, number>; configKeys: string[] };
const CONFIG_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface AppRoutesDeps {
  config: RackConfig;
  commands: ConsoleCommands;
  events: ConsoleEvents;
  subjects: CommitSubjects;
}

/** Buttons and forms are offered to principals that may change an app; the commands still check. */
const mayChange = (c: Caller) => c.principal.role !== 'deploy';

/** Everything under /console/apps/APP/: the tabs, their parts for htmx, their actions, the page's stream. */
export class AppRoutes implements AppPage {
  private readonly overview: OverviewRoutes;
  private readonly addons: AddonsRoutes;

  constructor(private readonly deps: AppRoutesDeps) {
    this.overview = new OverviewRoutes(deps.commands, this);
    this.addons = new AddonsRoutes(deps.commands, this);
  }

  async handle(r: ConsoleRequest, rawApp: string, rest: string[]): Promise<void> {
    const app = assertAppName(rawApp);
    const method = r.req.method ?? 'GET';
    const [tab = '', sub, verb] = rest;
    const key = `${method} ${tab}${sub === undefined ? '' : `/${/^\d+$/.test(sub) ? 'N' : sub}`}${verb === undefined ? '' : `/${verb}`}`;
    const { commands } = this.deps;
    const c = r.caller;
    if (tab === 'addons' && verb === undefined) return this.addons.handle(r, app, method, sub ?? '');
    switch (key) {
      case 'GET ':
      case 'GET overview':
        return this.overview.overview(r, app);
      case 'GET metrics':
        return this.overview.metricsPage(r, app);
      case 'GET events':
        // The stream carries the app's log lines: it is opened only for who may read them.
        await commands.text(c, 'logs', app, [], { num: '1' });
        return serveEvents(r, this.deps.events, app);
      case 'GET releases':
        return this.tab(r, app, 'releases', 'Releases', releasesTab(await this.releasesView(c, app)));
      case 'GET releases/list':
        return sendHtml(r.res, 200, releasesList(await this.releasesView(c, app)));
      case 'POST releases/N/rollback':
      case 'POST releases/N/promote': {
        const version = Number(sub);
        const rollback = verb === 'rollback';
        return this.act(r, app, `${rollback ? 'Rolling back to' : 'Promoting'} v${version}`, ['releases', 'builds', 'processes', 'config'], (sink) =>
          rollback ? commands.rollback(c, app, version, sink) : commands.promote(c, app, version, sink),
        );
      }
      case 'GET builds':
        return this.tab(r, app, 'builds', 'Builds', buildsTab(app, ...(await this.builds(c, app)), mayChange(c), await this.servingBuild(c, app)));
      case 'GET builds/list': {
        const serving = await this.servingBuild(c, app);
        return sendHtml(r.res, 200, buildsList(app, ...(await this.builds(c, app)), { canChange: mayChange(c), ...(serving === undefined ? {} : { serving }) }));
      }
      case 'POST builds/N/deploy': {
        const id = Number(sub);
        return this.act(r, app, `Deploying b${id}`, ['releases', 'builds', 'processes'], (sink) => commands.deployBuild(c, app, id, sink), { ok: `Deployed b${id}`, failed: `b${id} not deployed` });
      }
      case 'GET builds/N': {
        const id = Number(sub);
        const build = await commands.query<BuildRecord>(c, 'builds:info', app, [`b${id}`]);
        const log = build.status === 'building' || build.status === 'pending' ? undefined : await commands.text(c, 'builds:logs', app, [`b${id}`]);
        return this.tab(r, app, 'builds', `b${id}`, buildLog(app, build, log));
      }
      case 'POST builds': {
        const deploy = (await readForm(r.req)).get('deploy') === 'yes';
        return this.act(r, app, deploy ? 'Building and deploying' : 'Building', ['builds', 'releases', 'processes'], (sink) => commands.build(c, app, deploy, sink));
      }
      case 'GET environment':
        return this.tab(r, app, 'environment', 'Environment', environmentTab(app, ...(await this.environment(c, app))));
      case 'GET environment/panel':
        return sendHtml(r.res, 200, environmentPanel(app, ...(await this.environment(c, app))));
      case 'GET environment/value': {
        const name = r.url.searchParams.get('key') ?? '';
        if (!CONFIG_KEY.test(name)) throw new RackError('bad_argument', 'no such config name');
        const value = await commands.text(c, 'config:get', app, [name]);
        return sendHtml(r.res, 200, html`<code class="revealed">${value}</code>`);
      }
      case 'POST environment':
        return this.changeConfig(r, app);
      case 'GET processes':
        return this.tab(r, app, 'processes', 'Processes', processesTab(app, ...(await this.processes(c, app))));
      case 'GET processes/panel':
        return sendHtml(r.res, 200, processesPanel(app, ...(await this.processes(c, app))));
      case 'POST processes/scale': {
        const form = await readForm(r.req);
        const counts: Record<string, number> = {};
        // Only the types whose count the user changed: the others may have been scaled meanwhile
        // (over ssh, another page), and sending what this page showed would undo that.
        for (const [k, v] of form) {
          if (!k.startsWith('count:')) continue;
          const type = k.slice(6);
          if (form.get(`was:${type}`) !== v) counts[type] = Number(v);
        }
        if (Object.keys(counts).length === 0) throw new RackError('bad_argument', 'nothing to scale: change a count first');
        return this.act(r, app, 'Scaling', ['processes'], (sink) => commands.scale(c, app, counts, sink));
      }
      case 'POST processes/restart': {
        const type = (await readForm(r.req)).get('type') || undefined;
        return this.act(r, app, `Restarting ${type ?? 'all processes'}`, ['processes'], (sink) => commands.restart(c, app, type, sink));
      }
      case 'POST processes/maintenance': {
        const on = (await readForm(r.req)).get('on');
        if (on !== 'on' && on !== 'off') throw new RackError('bad_argument', 'expected on or off');
        return this.act(r, app, `Turning maintenance ${on}`, ['processes'], (sink) => commands.maintenance(c, app, on === 'on', sink));
      }
      case 'GET logs': {
        // The search fields go to `logs` as its flags, which check them as they check ssh's.
        const search = readLogSearch(r.url.searchParams);
        const lines = (await commands.text(c, 'logs', app, [], { num: '300', ...logQueryFlags(search) })).split('\n').filter((l) => l !== '');
        const types = Object.keys((await this.current(c, app))?.processTypes ?? {});
        return this.tab(r, app, 'logs', 'Logs', logsTab(app, lines, types, search));
      }
      case 'GET logs/download':
        return this.downloadLogs(r, app);
      case 'GET domains':
        return this.tab(r, app, 'domains', 'Domains', domainsTab(app, await commands.query(c, 'domains', app), mayChange(c), httpsPanel(await this.https(c, app))));
      case 'GET domains/https':
        return sendHtml(r.res, 200, httpsPanel(await this.https(c, app)));
      case 'POST domains/https/auto':
      case 'POST domains/https/redirect':
      case 'POST domains/https/hsts': {
        const on = (await readForm(r.req)).get('on') ?? '';
        const command = `certs:${verb ?? ''}`;
        // certs:auto on waits for its orders over ssh; here the page's HTTPS panel shows them as they go.
        return this.act(r, app, `${command} ${on}`, ['domains'], (sink) => commands.change(c, command, app, [on], verb === 'auto' && on === 'on' ? { 'no-wait': true } : {}, sink));
      }
      case 'GET domains/panel':
        return sendHtml(r.res, 200, domainsPanel(app, await commands.query(c, 'domains', app), mayChange(c)));
      case 'POST domains/add':
      case 'POST domains/remove': {
        const host = (await readForm(r.req)).get('host') ?? '';
        const add = sub === 'add';
        return this.act(r, app, `${add ? 'Adding' : 'Removing'} ${host}`, ['domains'], (sink) => (add ? commands.addDomain(c, app, host, sink) : commands.removeDomain(c, app, host, sink)));
      }
      case 'GET deploys':
        return this.tab(r, app, 'deploys', 'Deploys', deploysTab(await this.deploys(c, app)));
      case 'GET deploys/panel':
        return sendHtml(r.res, 200, deploysPanel(await this.deploys(c, app)));
      case 'POST deploys/review-apps/enable':
      case 'POST deploys/review-apps/disable': {
        const on = verb === 'enable';
        return this.act(r, app, `${on ? 'Enabling' : 'Disabling'} review apps`, ['repo'], (sink) => commands.reviewApps(c, app, on, sink));
      }
      case 'GET destroy':
        return sendHtml(r.res, 200, page({ title: `Destroy ${app}`, principal: c.principal, app, body: destroyPage(app) }));
      case 'POST destroy': {
        const confirm = (await readForm(r.req)).get('confirm') ?? '';
        // Waited for: the page goes back to the apps list only once the app is gone.
        await commands.destroyApp(c, app, confirm.trim(), () => undefined);
        return redirect(r.res, `/console/?destroyed=${encodeURIComponent(app)}`);
      }
      case 'GET cron':
        return this.tab(r, app, 'cron', 'Scheduled jobs', cronTab(app, await commands.query<JobView[]>(c, 'cron:list', app)));
      case 'GET audit': {
        const entries = await commands.query<AuditEntry[]>(c, 'audit', app, [], { num: '200' });
        return this.tab(r, app, 'audit', 'Audit', auditTable(entries, false));
      }
      default:
        throw new RackError('not_found', `nothing at ${r.url.pathname.slice(0, 100)}`);
    }
  }

  tab(r: ConsoleRequest, app: string, tab: AppTab, title: string, body: SafeHtml): void {
    sendHtml(r.res, 200, page({ title: `${title} · ${app}`, principal: r.caller.principal, app, tab, events: { url: appPath(app, '/events'), from: this.deps.events.startId(app) }, body }));
  }

  /** Starts a change and answers with the box its live lines go to (or with its refusal). */
  async act(
    r: ConsoleRequest,
    app: string,
    title: string,
    touches: Touch[],
    run: (sink: LineSink) => Promise<unknown>,
    ended: { ok?: string; failed?: string } = {},
  ): Promise<void> {
    const { action } = await startAction({
      events: this.deps.events,
      app,
      touches,
      run,
      outcome: async (ok) => {
        if (ok || !touches.includes('releases')) return '';
        const current = await this.current(r.caller, app);
        return current ? `Serving now: v${current.version} (${current.description}).` : '';
      },
    });
    sendHtml(r.res, 200, actionBox(action, title, ended));
  }

  /**
   * The kept lines the search asks for, as a text file: the `logs` command's lines are written to
   * the answer as the command prints them, with the same checks and filters as the page and ssh.
   */
  private async downloadLogs(r: ConsoleRequest, app: string): Promise<void> {
    const search = readLogSearch(r.url.searchParams);
    const { res } = r;
    // The head goes out with the first line: a refusal or a bad time, found before any, is the
    // page's usual one-line error instead of a file. The log store bounds an answer at 32 MiB.
    const head = () => {
      if (res.headersSent) return;
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'Content-Type': 'text/plain; charset=utf-8',
        'Content-Disposition': `attachment; filename="${app}-logs.txt"`,
        'Cache-Control': 'no-store',
      });
    };
    await this.deps.commands.stream(r.caller, 'logs', app, [], { num: '99999', ...logQueryFlags(search) }, (text) => {
      head();
      res.write(text);
    });
    head();
    res.end();
  }

  private async https(c: Caller, app: string): Promise<HttpsView> {
    const [hosts, record, domains] = await Promise.all([
      this.deps.commands.query<HostCert[]>(c, 'certs', app),
      this.deps.commands.query<AppRecord[]>(c, 'apps', '').then((apps) => apps.find((a) => a.name === app)),
      this.deps.commands.query<{ default: string }>(c, 'domains', app),
    ]);
    const bind = this.deps.config.bind;
    const everywhere = bind === '0.0.0.0' || bind === '::' || bind === 'localhost' || bind.startsWith('127.');
    return { app, hosts, https: record?.https ?? {}, defaultHost: domains.default, ...(everywhere ? {} : { address: bind }), canChange: mayChange(c) };
  }

  private async changeConfig(r: ConsoleRequest, app: string): Promise<void> {
    const form = await readForm(r.req);
    const set: Record<string, string> = {};
    const unset = new Set(form.getAll('unset'));
    for (const [k, v] of form) if (k.startsWith('set:') && v !== '') set[k.slice(4)] = v;
    const keys = form.getAll('new-key');
    const values = form.getAll('new-value');
    keys.forEach((k, i) => {
      if (k.trim() !== '') set[k.trim()] = values[i] ?? '';
    });
    for (const k of [...Object.keys(set), ...unset]) {
      if (!CONFIG_KEY.test(k)) throw new RackError('bad_argument', `invalid config name ${JSON.stringify(k.slice(0, 40))}: use ${NAME_RULE}`);
    }
    for (const k of unset) delete set[k];
    // The command checks again; checked here too so the form is refused at once, not in the action's log.
    for (const [k, v] of Object.entries(set)) assertConfigValue(k, v);
    if (Object.keys(set).length === 0 && unset.size === 0) throw new RackError('bad_argument', 'nothing to change: fill in a value, a new variable, or tick remove');
    const deploy = form.get('deploy') !== 'no';
    const c = r.caller;
    return this.act(
      r,
      app,
      deploy ? 'Applying changes' : 'Saving without deploying',
      ['config', 'releases', 'processes'],
      (sink) => this.deps.commands.changeConfig(c, app, set, [...unset], deploy, sink),
      deploy ? { ok: 'Changes applied', failed: 'Changes not applied' } : { ok: 'Saved (not deployed)', failed: 'Not saved' },
    );
  }

  private async releasesView(c: Caller, app: string): Promise<ReleasesView> {
    const releases = await this.deps.commands.query<ReleaseRow[]>(c, 'releases', app);
    const [builds, subjects] = await this.builds(c, app);
    const running = builds.filter((b) => b.status === 'building' || b.status === 'pending');
    return { app, releases, builds: new Map(builds.map((b) => [b.id, b])), subjects, canChange: mayChange(c), running };
  }

  private async builds(c: Caller, app: string): Promise<[BuildRecord[], Map<string, string>]> {
    const builds = await this.deps.commands.query<BuildRecord[]>(c, 'builds', app);
    const repo = repoDir(paths.repos(this.deps.config), app);
    return [builds, await this.deps.subjects.of(repo, builds.map((b) => b.commit))];
  }

  private async current(c: Caller, app: string): Promise<ReleaseInfo | undefined> {
    return (await this.currentWithApp(c, app)).release;
  }

  /** This app's build that serves now (none when the serving release was promoted from another app's build). */
  private async servingBuild(c: Caller, app: string): Promise<number | undefined> {
    const current = await this.current(c, app);
    return current && !current.promotedFrom ? current.build : undefined;
  }

  private async currentWithApp(c: Caller, app: string): Promise<{ record: AppRecord | undefined; release: ReleaseInfo | undefined }> {
    const record = (await this.deps.commands.query<AppRecord[]>(c, 'apps', '')).find((a) => a.name === app);
    if (!record?.currentRelease) return { record, release: undefined };
    return { record, release: await this.deps.commands.query<ReleaseInfo>(c, 'releases:info', app, [`v${record.currentRelease}`]) };
  }

  private async deploys(c: Caller, app: string): Promise<DeploysView> {
    let repo: RepoInfo | undefined;
    try {
      repo = await this.deps.commands.query<RepoInfo>(c, 'repo:info', app);
    } catch (err) {
      // Not connected is this tab's empty state; anything else (a refusal) is the page's answer.
      if (RackError.from(err).code !== 'not_found') throw err;
    }
    const reviewApps = repo ? await this.deps.commands.query<ReviewAppRow[]>(c, 'reviewapps', app) : [];
    return { app, repo, reviewApps, canChange: mayChange(c) };
  }

  private async environment(c: Caller, app: string): Promise<[string[], boolean, boolean, Map<string, string>]> {
    try {
      const config = await this.deps.commands.query<Record<string, string>>(c, 'config', app);
      return [Object.keys(config).sort(), true, mayChange(c), await this.addonKeys(c, app)];
    } catch (err) {
      if (RackError.from(err).code !== 'forbidden') throw err;
      // A deploy-only token reads the names (in the release history), never the values.
      const current = await this.current(c, app);
      return [current?.configKeys ?? [], false, false, new Map()];
    }
  }

  /** Config keys an attached add-on owns, to the add-on's name: the newest release's attachments (the app's before its first). */
  private async addonKeys(c: Caller, app: string): Promise<Map<string, string>> {
    const [newest] = await this.deps.commands.query<ReleaseRecord[]>(c, 'releases', app);
    const attachments = newest ? newest.addons : (await this.deps.commands.query<AppRecord[]>(c, 'apps', '')).find((a) => a.name === app)?.addons;
    return new Map((attachments ?? []).flatMap((a) => a.keys.map((k) => [k, a.addon] as const)));
  }

  private async processes(c: Caller, app: string): Promise<[ProcessRow[], Record<string, number>, boolean, boolean]> {
    const rows = await this.deps.commands.query<ProcessRow[]>(c, 'ps', app);
    const { record, release } = await this.currentWithApp(c, app);
    // What runs now: the release's defaults as ps:scale changed them on the app (the release's own
    // formation is what it was made with, stale after a scale).
    const formation = release ? resolveFormation(release, record?.formation) : {};
    const { maintenance } = await this.deps.commands.query<{ maintenance: boolean }>(c, 'maintenance', app);
    return [rows, formation, mayChange(c), maintenance];
  }
}

