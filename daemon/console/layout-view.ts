import { allowed, type AccessLevel } from '../access/access-policy.js';
import type { Principal } from '../access/principal.js';
import { findCommand } from '../commands/command-runner.js';
import { html, type SafeHtml } from './html-template.js';

export const ASSETS = '/console/assets';

export type AppTab = 'overview' | 'metrics' | 'addons' | 'releases' | 'builds' | 'deploys' | 'environment' | 'processes' | 'cron' | 'logs' | 'domains' | 'audit';
/** `needs`: the command a tab's page runs first; a principal it would refuse is not shown the tab. */
export const APP_TABS: { tab: AppTab; label: string; needs?: string | AccessLevel }[] = [
  // The Overview leaves out what the principal may not read: anyone who may deploy the app has it.
  { tab: 'overview', label: 'Overview', needs: 'deploy' },
  { tab: 'releases', label: 'Releases', needs: 'releases' },
  { tab: 'builds', label: 'Builds', needs: 'builds' },
  { tab: 'deploys', label: 'Deploys', needs: 'repo:info' },
  { tab: 'environment', label: 'Environment' },
  { tab: 'processes', label: 'Processes', needs: 'ps' },
  { tab: 'cron', label: 'Scheduled jobs', needs: 'cron:list' },
  { tab: 'logs', label: 'Logs', needs: 'logs' },
  { tab: 'metrics', label: 'Metrics', needs: 'metrics' },
  // `addons` checks by itself; its page says what a deploy-only principal may not change.
  { tab: 'addons', label: 'Add-ons', needs: 'deploy' },
  { tab: 'domains', label: 'Domains', needs: 'domains' },
  // `audit` checks by itself: an app's own entries are for its members.
  { tab: 'audit', label: 'Audit', needs: 'member' },
];

const LEVELS: readonly string[] = ['public', 'checked-by-command', 'deploy', 'member', 'admin'] satisfies AccessLevel[];

/** Whether to offer what needs this command (or level): the policy the command itself applies, asked ahead (it still checks). */
export function mayRun(principal: Principal | undefined, app: string, needs: string | AccessLevel | undefined): boolean {
  if (!principal || needs === undefined) return true;
  const level = LEVELS.includes(needs) ? (needs as AccessLevel) : findCommand(needs)?.access;
  return level === undefined || allowed(principal, level, app);
}

export const appPath = (app: string, rest = '') => `/console/apps/${encodeURIComponent(app)}${rest}`;

/** The page around every view: header, sign-out, and for an app its tabs and its one event stream. */
export function page(opts: {
  title: string;
  principal?: Principal;
  app?: string;
  tab?: AppTab;
  /**
   * The event stream of the page (an app's) and the event ID it starts after (`ConsoleEvents.startId`);
   * absent on pages without live parts.
   */
  events?: { url: string; from: string };
  body: SafeHtml;
}): SafeHtml {
  const { principal, app, tab } = opts;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},{"code":"[45]..","swap":true,"error":true}]}'>
<title>${opts.title} · rack</title>
<link rel="icon" href="${ASSETS}/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="${ASSETS}/console.css">
<script src="${ASSETS}/htmx.min.js" defer></script>
<script src="${ASSETS}/console.js" defer></script>
</head>
<body${opts.events ? html` data-events="${opts.events.url}" data-events-from="${opts.events.from}"` : ''}>
<header class="top">
  <a class="brand" href="/console/">rack</a>
  ${principal
    ? html`<nav aria-label="rack">
    <a href="/console/">Apps</a> <a href="/console/pipelines">Pipelines</a>
    ${principal.role === 'admin' ? html`<a href="/console/access">Access</a> <a href="/console/audit">Audit</a> <a href="/console/rack">Rack</a>` : ''}
  </nav>
  <form method="post" action="/console/sign-out" class="sign-out">
    <span class="who">${principal.kind} ${principal.name} (${principal.role})</span>
    <button type="submit">Sign out</button>
  </form>`
    : ''}
</header>
<p id="connection" class="connection" role="status" hidden>Reconnecting…</p>
<main>
${app
    ? html`<h1>${app}</h1>
<nav class="tabs" aria-label="app">
${APP_TABS.filter((t) => mayRun(principal, app, t.needs)).map((t) => html`<a href="${appPath(app, `/${t.tab}`)}"${t.tab === tab ? html` aria-current="page"` : ''}>${t.label}</a>`)}
</nav>`
    : ''}
${opts.body}
</main>
</body>
</html>
`;
}

/** The box a started action writes its live lines into (console.js appends them as text). */
export function actionBox(action: string, title: string, ended: { ok?: string; failed?: string } = {}): SafeHtml {
  // The title says what is going on; once the action ends console.js puts the matching past tense there.
  return html`<div class="action" data-action="${action}">
<p class="action-title" data-ok="${ended.ok ?? `${title}: done`}" data-failed="${ended.failed ?? `${title}: failed`}">${title}</p>
<pre class="live" data-lines="${action}"></pre>
<p class="outcome" data-outcome="${action}" role="status"></p>
</div>`;
}

export function errorBox(message: string): SafeHtml {
  return html`<p class="error" role="alert">${message}</p>`;
}

export function when(iso: string | null | undefined): string {
  if (!iso) return '-';
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** "3 min ago", "in 2 days": how long from `now`, in the largest whole unit. */
export function relativeTime(iso: string, now = Date.now()): string {
  const ms = Date.parse(iso) - now;
  if (Number.isNaN(ms)) return '-';
  const s = Math.round(Math.abs(ms) / 1000);
  const say = (n: number, unit: string) => (ms > 0 ? `in ${n} ${unit}` : `${n} ${unit} ago`);
  if (s < 45) return ms > 0 ? 'in a moment' : 'just now';
  if (s < 3600) return say(Math.max(1, Math.round(s / 60)), 'min');
  if (s < 86_400) return say(Math.round(s / 3600), Math.round(s / 3600) === 1 ? 'hour' : 'hours');
  if (s < 86_400 * 60) return say(Math.round(s / 86_400), Math.round(s / 86_400) === 1 ? 'day' : 'days');
  return when(iso).slice(0, 10);
}

/** A time as "3 min ago", the exact time on hover (console.js keeps the words current). */
export function timeAgo(iso: string | null | undefined, now = Date.now()): SafeHtml | string {
  if (!iso) return '-';
  return html`<time datetime="${iso}" title="${when(iso)}">${relativeTime(iso, now)}</time>`;
}
