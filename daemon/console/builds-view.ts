import type { BuildRecord } from '../store/records.js';
import { html, type SafeHtml } from './html-template.js';
import { appPath, timeAgo } from './layout-view.js';

const took = (ms: number | null) => (ms === null ? '-' : `${(ms / 1000).toFixed(1)} s`);

/** The Builds tab's list, newest first, each with its commit subject and a link to its log. */
export function buildsList(app: string, builds: BuildRecord[], subjects: Map<string, string>, deployable: { canChange: boolean; serving?: number } = { canChange: false }): SafeHtml {
  return html`<section id="builds" hx-get="${appPath(app, '/builds/list')}" hx-trigger="rack-builds from:body" hx-swap="outerHTML" aria-label="builds">
${builds.length === 0
    ? html`<p class="empty">No builds yet.</p>`
    : html`<ol class="cards">${builds.map(
        (b) => html`<li class="card build status-${b.status}">
<div class="card-head"><a class="version" href="${appPath(app, `/builds/${b.id}`)}">b${b.id}</a> <span class="badge">${b.status}</span> <code>${b.commit.slice(0, 7)}</code> <q class="subject">${subjects.get(b.commit) ?? ''}</q></div>
<div class="meta">${b.createdBy} · ${timeAgo(b.createdAt)} · took ${took(b.durationMs)}${b.buildpacks.length ? html` · ${b.buildpacks.join(', ')}` : ''}</div>
${b.error ? html`<p class="reason">${b.error}</p>` : ''}
${deployable.canChange && b.status === 'succeeded' && b.id !== deployable.serving
          ? html`<button type="button" class="deploy-build" hx-post="${appPath(app, `/builds/${b.id}/deploy`)}" hx-confirm="Release b${b.id} of ${app} with its config of now?" hx-target="#action" hx-swap="innerHTML">Deploy this build</button>`
          : b.id === deployable.serving ? html`<span class="badge status-current">serving</span>` : ''}
</li>`,
      )}</ol>`}
</section>`;
}

export function buildsTab(app: string, builds: BuildRecord[], subjects: Map<string, string>, canChange: boolean, serving?: number): SafeHtml {
  return html`${canChange
    ? html`<form class="row" hx-post="${appPath(app, '/builds')}" hx-target="#action" hx-swap="innerHTML">
<button type="submit" name="deploy" value="no">Build again</button>
<button type="submit" name="deploy" value="yes">Build and deploy</button>
</form>`
    : ''}
<div id="action" class="action-area" aria-live="polite"></div>
${buildsList(app, builds, subjects, { canChange, ...(serving === undefined ? {} : { serving }) })}`;
}

/** One build's stored output (a running build's lines arrive on the page's stream when the console started it). */
export function buildLog(app: string, build: BuildRecord, log: string | undefined): SafeHtml {
  return html`<p><a href="${appPath(app, '/builds')}">← Builds</a></p>
<h2>b${build.id} <span class="badge">${build.status}</span></h2>
<p class="meta"><code>${build.commit}</code> · ${build.createdBy} · ${timeAgo(build.createdAt)}</p>
${build.status === 'building' || build.status === 'pending'
    ? html`<p class="note">This build is running; its log is stored when it ends, and this page reloads it then.</p>
<div hx-get="${appPath(app, `/builds/${build.id}`)}" hx-trigger="rack-builds from:body" hx-select="main" hx-target="main" hx-swap="outerHTML"></div>`
    : ''}
<pre class="log">${log ?? '(no stored output)'}</pre>`;
}
