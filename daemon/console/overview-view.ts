import type { AuditEntry, BuildRecord, ReleaseRecord } from '../store/records.js';
import type { AddonRow } from './addons-view.js';
import type { HostCert } from './https-view.js';
import { html, type SafeHtml } from './html-template.js';
import { appPath, when } from './layout-view.js';
import { metricCharts, rangeSwitch, type MetricsAnswer, type Range } from './metrics-view.js';
import type { ProcessRow } from './processes-view.js';

/** What the Overview shows; a part the principal may not read is absent (its section is left out). */
export interface OverviewView {
  app: string;
  processes?: ProcessRow[];
  current?: ReleaseRecord;
  /** Builds still running and releases still rolling out, newest first. */
  building: BuildRecord[];
  rollingOut: ReleaseRecord[];
  addons?: AddonRow[];
  hosts?: HostCert[];
  audit?: AuditEntry[];
  range: Range;
  metrics?: MetricsAnswer;
}

/** A state people should look at: anything but up or starting (crashes, a crash loop, down). */
const troubled = (state: string) => !/^(up|starting|draining)$/.test(state);

/**
 * The app's landing page: what runs and in what state, what serves and what is on its way, its
 * add-ons and hosts with their HTTPS, the last changes, and its metrics over a chosen range.
 */
export function overviewTab(v: OverviewView): SafeHtml {
  const { app } = v;
  return html`<div class="overview">
<section aria-labelledby="ov-release" class="panel">
<h2 id="ov-release">Release</h2>
${v.current
    ? html`<p><a href="${appPath(app, '/releases')}" class="version">v${v.current.version}</a> <span class="badge status-${v.current.status}">${v.current.status}</span> ${v.current.description}</p>
<p class="meta">${v.current.createdBy} · <time datetime="${v.current.createdAt}">${when(v.current.createdAt)}</time></p>`
    : html`<p class="empty">Not deployed yet: push with <code>git push rack main</code>.</p>`}
${v.building.map((b) => html`<p class="in-progress" role="status">Build <a href="${appPath(app, `/builds/${b.id}`)}">b${b.id}</a> is ${b.status} (<code>${b.commit.slice(0, 7)}</code>, ${b.createdBy}): <a href="${appPath(app, `/builds/${b.id}`)}">its log</a></p>`)}
${v.rollingOut.map((r) => html`<p class="in-progress" role="status">Release v${r.version} is rolling out (${r.description}): <a href="${appPath(app, '/logs')}">live log</a></p>`)}
</section>
${v.processes ? processesSummary(app, v.processes) : ''}
<section aria-labelledby="ov-metrics" class="panel wide">
<div class="row chart-head"><h2 id="ov-metrics">Metrics</h2>${rangeSwitch(appPath(app, '/'), v.range)} <a href="${appPath(app, `/metrics?range=${v.range}`)}">Larger</a></div>
${v.metrics ? (v.metrics.points.length ? metricCharts(v.metrics, 'small') : html`<p class="empty">No metrics in the last ${v.range} yet.</p>`) : html`<p class="empty">Metrics are not shown to this token.</p>`}
</section>
${v.addons
    ? html`<section aria-labelledby="ov-addons" class="panel">
<h2 id="ov-addons">Add-ons</h2>
${v.addons.length
        ? html`<ul class="plain">${v.addons.map((a) => html`<li><a href="${appPath(app, '/addons')}">${a.name}</a> ${a.type} ${a.version} as <code>${a.attached.filter((x) => x.app === app).map((x) => x.alias).join(', ') || '(detached)'}</code></li>`)}</ul>`
        : html`<p class="empty">None: <a href="${appPath(app, '/addons')}">add Postgres or Redis</a>.</p>`}
</section>`
    : ''}
${v.hosts
    ? html`<section aria-labelledby="ov-domains" class="panel">
<h2 id="ov-domains">Domains</h2>
<ul class="plain">${v.hosts.map((h) => html`<li><code>${h.host}</code> <span class="badge https-${httpsClass(h)}">${httpsWord(h)}</span></li>`)}</ul>
</section>`
    : ''}
${v.audit
    ? html`<section aria-labelledby="ov-audit" class="panel wide">
<h2 id="ov-audit">Recent changes</h2>
${v.audit.length
        ? html`<ul class="plain">${v.audit.map((e) => html`<li class="outcome-${e.outcome === 'ok' ? 'ok' : 'failed'}"><time datetime="${e.time}">${when(e.time)}</time> <code>${e.action}</code> ${e.detail} · ${e.actor.kind} ${e.actor.name}${e.outcome === 'ok' ? '' : html` · <strong>${e.outcome}</strong>`}</li>`)}</ul>
<p><a href="${appPath(app, '/audit')}">All changes</a></p>`
        : html`<p class="empty">No changes recorded yet.</p>`}
</section>`
    : ''}
</div>`;
}

function processesSummary(app: string, processes: ProcessRow[]): SafeHtml {
  const types = [...new Set(processes.map((p) => p.type))].sort();
  return html`<section aria-labelledby="ov-processes" class="panel">
<h2 id="ov-processes">Processes</h2>
${processes.length === 0
    ? html`<p class="empty">No processes running.</p>`
    : html`<ul class="plain">${types.map((t) => {
        const of = processes.filter((p) => p.type === t);
        const up = of.filter((p) => p.state === 'up').length;
        const bad = of.filter((p) => troubled(p.state));
        return html`<li${bad.length ? html` class="trouble"` : ''}><strong>${t}</strong> ${up}/${of.length} up${bad.map((p) => html` · <code>${p.name}</code> <span class="badge status-failed">${p.state}</span> ${p.restarts} restarts`)}</li>`;
      })}</ul>`}
<p><a href="${appPath(app, '/processes')}">Processes</a></p>
</section>`;
}

export const httpsWord = (h: HostCert): string => (h.source === 'none' ? (h.auto ? 'HTTPS ordering' : 'HTTP only') : /^ok/.test(h.status) ? 'HTTPS' : 'HTTPS: check');
export const httpsClass = (h: HostCert): string => (h.source === 'none' ? (h.auto ? 'pending' : 'none') : /^ok/.test(h.status) ? 'ok' : 'failed');
