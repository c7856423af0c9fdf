import type { Principal } from '../access/principal.js';
import { html, type SafeHtml } from './html-template.js';

export const ASSETS = '/console/assets';

export type AppTab = 'overview' | 'metrics' | 'addons' | 'releases' | 'builds' | 'deploys' | 'environment' | 'processes' | 'logs' | 'domains' | 'audit';
export const APP_TABS: { tab: AppTab; label: string }[] = [
  { tab: 'overview', label: 'Overview' },
  { tab: 'releases', label: 'Releases' },
  { tab: 'builds', label: 'Builds' },
  { tab: 'deploys', label: 'Deploys' },
  { tab: 'environment', label: 'Environment' },
  { tab: 'processes', label: 'Processes' },
  { tab: 'logs', label: 'Logs' },
  { tab: 'metrics', label: 'Metrics' },
  { tab: 'addons', label: 'Add-ons' },
  { tab: 'domains', label: 'Domains' },
  { tab: 'audit', label: 'Audit' },
];

export const appPath = (app: string, rest = '') => `/console/apps/${encodeURIComponent(app)}${rest}`;

/** The page around every view: header, sign-out, and for an app its tabs and its one event stream. */
export function page(opts: {
  title: string;
  principal?: Principal;
  app?: string;
  tab?: AppTab;
  /** The event stream of the page (an app's); absent on pages without live parts. */
  events?: string;
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
<link rel="stylesheet" href="${ASSETS}/console.css">
<script src="${ASSETS}/htmx.min.js" defer></script>
<script src="${ASSETS}/console.js" defer></script>
</head>
<body${opts.events ? html` data-events="${opts.events}"` : ''}>
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
${APP_TABS.map((t) => html`<a href="${appPath(app, `/${t.tab}`)}"${t.tab === tab ? html` aria-current="page"` : ''}>${t.label}</a>`)}
</nav>`
    : ''}
${opts.body}
</main>
</body>
</html>
`;
}

/** The box a started action writes its live lines into (console.js appends them as text). */
export function actionBox(action: string, title: string): SafeHtml {
  return html`<div class="action" data-action="${action}">
<p class="action-title">${title}</p>
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
