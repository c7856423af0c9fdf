import { formatUptime, phaseLine, took, type RackInfo } from '../commands/rack.js';
import type { RackBuild, RackReleaseRecord } from '../store/records.js';
import type { UpdateCheck } from '../versions/rack-updates.js';
import { describeBuild } from '../versions/rack-build.js';
import { html, type SafeHtml } from './html-template.js';
import { timeAgo, when } from './layout-view.js';

export const RACK_PATH = '/console/rack';

export interface RackView {
  info: RackInfo;
  /** Newest first, as `rack:releases --json` gives it. */
  ledger: RackReleaseRecord[];
  /** Milliseconds since the epoch, for "5m ago". */
  now: number;
}

/** `just now`, `4m 10s ago`, `2d 3h ago`; the exact time goes in the element's title. */
export function ago(iso: string, now: number): string {
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  if (!Number.isFinite(seconds)) return '-';
  if (seconds < 10) return 'just now';
  return `${formatUptime(seconds)} ago`;
}

const isRunning = (r: RackBuild, info: RackBuild) => r.commit === info.commit && r.version === info.version;

function result(r: RackReleaseRecord): string {
  if (r.status === 'failed') return r.failedStep ? `failed at ${r.failedStep}` : 'failed';
  return r.status === 'pending' ? 'under way' : r.status;
}

/** The newest update or rollback in a sentence: under way (the page follows it), or how it ended. */
function newestState(view: RackView): SafeHtml | string {
  const r = view.ledger[0];
  if (!r || (r.kind !== 'update' && r.kind !== 'rollback')) return '';
  const target = describeBuild(r);
  if (r.status === 'pending') return html`<p class="ledger-state pending" role="status">r${r.id} (${r.kind} to ${target}) is under way; this page follows it until it ends.</p>`;
  if (r.status === 'succeeded') return html`<p class="ledger-state ok" role="status">r${r.id} succeeded: rack ${target} is serving.</p>`;
  return html`<p class="ledger-state failed" role="status">r${r.id} failed at ${r.failedStep ?? 'an unknown step'}: ${r.error ?? 'no reason recorded'}. rack ${describeBuild(view.info)} is serving.</p>`;
}

function infoList(info: RackInfo): SafeHtml {
  const r = info.router;
  const schema = `v${info.schema}${info.schema === info.schemaLatest ? '' : ` (this rack reads up to v${info.schemaLatest})`}`;
  return html`<dl class="facts">
<dt>Version</dt><dd class="rack-version">${info.version}</dd>
<dt>Commit</dt><dd><code class="rack-commit">${info.commit}</code></dd>
<dt>Schema</dt><dd>${schema}</dd>
<dt>Runtime</dt><dd>${info.runtime}</dd>
<dt>Up</dt><dd>${formatUptime(info.uptimeSeconds)}, since ${timeAgo(info.startedAt)}</dd>
<dt>Router</dt><dd>${r ? `pid ${r.pid}, protocol ${r.protocol}, version ${r.version ?? 'not reported'}, up ${formatUptime(r.uptimeSeconds)}` : `not answering (${info.routerError ?? 'no reason given'})`}</dd>
</dl>`;
}

function ledgerRow(view: RackView, r: RackReleaseRecord): SafeHtml {
  const running = isRunning(r, view.info) && r.status === 'succeeded';
  const mayRollBack = r.status === 'succeeded' && !isRunning(r, view.info) && r.commit !== 'unknown';
  const question = `Roll rack back to r${r.id} (${describeBuild(r)})? rackd is replaced by that version; apps keep serving.`;
  return html`<tr class="rack-release status-${r.status}" data-release="${r.id}"${running ? html` aria-current="true"` : ''}>
<td><strong>r${r.id}</strong>${running ? html` <span class="badge">running</span>` : ''}${mayRollBack
    ? html`<br><button type="button" class="rollback" hx-post="${RACK_PATH}/releases/${r.id}/rollback" hx-confirm="${question}" hx-target="#action" hx-swap="innerHTML">Roll back</button>`
    : ''}</td>
<td>${describeBuild(r)}</td>
<td>${r.from ? describeBuild(r.from) : '-'}</td>
<td>${r.kind}</td>
<td class="result">${result(r)}</td>
<td><time datetime="${r.createdAt}" title="${when(r.createdAt)}">${ago(r.createdAt, view.now)}</time></td>
<td>${took(r.durationMs)}</td>
<td>${r.createdBy}</td>
<td class="description"><details data-keep="r${r.id}"><summary>${r.description}</summary>
<p class="meta">Steps: ${phaseLine(r.phases)}</p>
<p class="meta">Schema v${r.schema}${r.finishedAt ? html` · finished ${timeAgo(r.finishedAt)}` : ''}${r.dir ? html` · <code>${r.dir}</code>` : ''}</p>
${r.error ? html`<p class="reason">${r.error}</p>` : ''}
</details></td>
</tr>`;
}

/**
 * What runs and the ledger, in one part that fetches itself again when the ledger changes, and
 * every 2 s while an entry is under way: across a switch the page's stream is cut and rackd does
 * not answer for a moment (console.js keeps the part as it is on such an answer), so polling is
 * what sees the entry finish.
 */
export function rackPanel(view: RackView): SafeHtml {
  const pending = view.ledger.some((r) => r.status === 'pending');
  return html`<section id="rack-panel" hx-get="${RACK_PATH}/panel" hx-trigger="rack-ledger from:body${pending ? ', every 2s' : ''}" hx-swap="outerHTML" data-poll aria-label="rack">
${infoList(view.info)}
${newestState(view)}
<h2>Releases</h2>
<div class="table-wrap"><table class="ledger">
<thead><tr><th scope="col">Release</th><th scope="col">Version</th><th scope="col">From</th><th scope="col">Kind</th><th scope="col">Result</th><th scope="col">When</th><th scope="col">Took</th><th scope="col">By</th><th scope="col">Description</th></tr></thead>
<tbody>${view.ledger.length ? view.ledger.map((r) => ledgerRow(view, r)) : html`<tr><td colspan="9" class="empty">No releases recorded yet.</td></tr>`}</tbody>
</table></div>
</section>`;
}

/** The Rack page (admins): what runs, the update form, the live box of an update or rollback, the ledger. */
export function rackPage(view: RackView): SafeHtml {
  return html`<h1>Rack</h1>
<form class="stack rack-update" hx-post="${RACK_PATH}/update" hx-confirm="Update rack? It is built beside the running one, then rackd is replaced by it; apps keep serving." hx-target="#action" hx-swap="innerHTML">
<h2>Update</h2>
<label>Ref (tag, branch or commit; empty: the source's HEAD) <input name="ref" autocomplete="off" spellcheck="false"></label>
<label>From (repository URL or path; empty: where rack was installed from) <input name="from" autocomplete="off" spellcheck="false"></label>
<div class="row">
<button type="button" class="check" hx-post="${RACK_PATH}/check" hx-include="closest form" hx-confirm="unset" hx-target="#rack-check" hx-swap="innerHTML" hx-disabled-elt="this">Check for update</button>
<button type="submit" class="primary">Update</button>
</div>
<div id="rack-check" aria-live="polite"></div>
</form>
<div id="action" class="action-area" aria-live="polite"></div>
${rackPanel(view)}`;
}

/** The answer of "Check for update". */
export function checkAnswer(found: UpdateCheck): SafeHtml {
  if (found.upToDate) return html`<p class="check-answer ok" role="status">rack ${describeBuild(found.running)} is up to date with ${found.as} of <code>${found.source}</code>.</p>`;
  const ahead = found.ahead === null ? '' : `, ${found.ahead} commit${found.ahead === 1 ? '' : 's'} ahead of ${describeBuild(found.running)}`;
  return html`<p class="check-answer available" role="status">rack ${describeBuild(found.available)} is available (${found.as} of <code>${found.source}</code>${ahead}).</p>`;
}
