import { diffConfig } from '../release/config-vars.js';
import type { BuildRecord, ReleaseRecord } from '../store/records.js';
import { html, type SafeHtml } from './html-template.js';
import { appPath, timeAgo } from './layout-view.js';

/** A release as `releases --json` gives it (config values masked for deploy-only principals). */
export type ReleaseRow = ReleaseRecord & { current: boolean };

export interface ReleasesView {
  app: string;
  /** Newest first. */
  releases: ReleaseRow[];
  builds: Map<number, Pick<BuildRecord, 'id' | 'commit'>>;
  /** Commit SHA → subject line. */
  subjects: Map<string, string>;
  /** Whether to offer Rollback and Promote (the server still checks every click). */
  canChange: boolean;
  /** Builds not finished yet (a push or build in progress), newest first. */
  running?: Pick<BuildRecord, 'id' | 'commit' | 'status' | 'createdAt' | 'createdBy'>[];
}

/**
 * The Releases tab's list: newest first, the current one marked; each with its build and commit,
 * who and when, status (a failure with its reason), and the names its config changed against the
 * release before it (values never shown here). Rollback on older releases that succeeded, Promote
 * on any other that is not current.
 */
export function releasesList(view: ReleasesView): SafeHtml {
  const { app, releases } = view;
  const current = releases.find((r) => r.current)?.version ?? 0;
  const url = appPath(app, '/releases/list');
  const items = releases.map((r, i) => releaseItem(view, r, releases[i + 1], current));
  const running = (view.running ?? []).map(
    (b) => html`<li class="card release status-running" data-build="${b.id}">
<div class="card-head"><strong class="version">b${b.id}</strong> <span class="badge">${b.status === 'pending' ? 'waiting to build' : 'building'}</span> <code>${b.commit.slice(0, 7)}</code>${view.subjects.has(b.commit) ? html` <q class="subject">${view.subjects.get(b.commit)}</q>` : ''}</div>
<div class="meta">${b.createdBy} · ${timeAgo(b.createdAt)} · its lines show above as they come; the release appears here when it is made</div>
</li>`,
  );
  return html`<section id="releases" class="releases" hx-get="${url}" hx-trigger="rack-releases from:body" hx-swap="outerHTML" aria-label="releases">
${running.length ? html`<ol class="cards in-progress">${running}</ol>` : ''}
${releases.length === 0 ? html`<p class="empty">No releases yet: push with <code>git push rack main</code>.</p>` : html`<ol class="cards">${items}</ol>`}
</section>`;
}

function releaseItem(view: ReleasesView, r: ReleaseRow, before: ReleaseRow | undefined, current: number): SafeHtml {
  // A promoted release's build number is another app's: this app's build of that number is not it.
  const build = r.promotedFrom ? undefined : view.builds.get(r.build);
  const subject = build ? view.subjects.get(build.commit) : undefined;
  // The list is newest first and numbers are dense: the next item is the release before this one.
  const prior = before && before.version === r.version - 1 ? before.config : r.version === 1 ? {} : undefined;
  const diff = prior === undefined ? undefined : diffConfig(prior, r.config);
  const status = r.current ? 'current' : r.status;
  let action: SafeHtml | string = '';
  if (view.canChange && !r.current && r.status !== 'pending') {
    const rollback = r.version < current && r.status === 'succeeded';
    const verb = rollback ? 'rollback' : 'promote';
    const label = rollback ? 'Rollback' : 'Promote';
    const question = rollback ? `Roll ${view.app} back to v${r.version}? This makes a new release.` : `Promote v${r.version} of ${view.app}? This makes a new release and rolls it out.`;
    action = html`<button type="button" class="${verb}" hx-post="${appPath(view.app, `/releases/${r.version}/${verb}`)}" hx-confirm="${question}" hx-target="#action" hx-swap="innerHTML">${label} to v${r.version}</button>`;
  }
  return html`<li class="card release status-${status}" data-version="${r.version}"${r.current ? html` aria-current="true"` : ''}>
<div class="card-head"><strong class="version">v${r.version}</strong> <span class="badge">${status}</span> <span class="description">${r.description}</span></div>
<div class="meta">${r.promotedFrom ? `${r.promotedFrom.buildApp}:` : ''}b${r.build}${build ? html` · <code>${build.commit.slice(0, 7)}</code>` : ''}${subject !== undefined ? html` <q class="subject">${subject}</q>` : ''} · ${r.createdBy} · ${timeAgo(r.createdAt)}</div>
${r.status === 'failed' && r.error ? html`<p class="reason">${r.error}</p>` : ''}
${diff && diff.added.length + diff.changed.length + diff.removed.length > 0
    ? html`<p class="diff">${diff.added.map((k) => html`<span class="added">+${k}</span> `)}${diff.changed.map((k) => html`<span class="changed">~${k}</span> `)}${diff.removed.map((k) => html`<span class="removed">-${k}</span> `)}</p>`
    : ''}
${action}
</li>`;
}

/** The whole tab: the action box the buttons fill, and the list. */
export function releasesTab(view: ReleasesView): SafeHtml {
  // Pushes in progress write their lines into #live-deploys (console.js), made anywhere: ssh, HTTP, webhooks.
  return html`<div id="action" class="action-area" aria-live="polite"></div>
<section id="live-deploys" aria-label="pushes in progress"></section>
${releasesList(view)}`;
}
