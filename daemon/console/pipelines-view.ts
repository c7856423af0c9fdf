import type { CommitLine, CommitDiff } from '../pipelines/release-commits.js';
import { PIPELINE_STAGES, type PipelineStage } from '../store/records.js';
import { html, type SafeHtml } from './html-template.js';
import { appPath, timeAgo } from './layout-view.js';

export const PIPELINES_PATH = '/console/pipelines';

/** One pipeline as `pipelines --json` gives it: only the apps the principal acts on. */
export interface PipelineRow {
  name: string;
  apps: {
    app: string;
    stage: PipelineStage;
    release: number | null;
    description: string | null;
    commit?: string | null;
    createdAt?: string | null;
  }[];
}

/** `pipelines:diff --json`. */
export interface PipelineDiff {
  app: string;
  release: number;
  commit: string;
  targets: { app: string; stage: PipelineStage; release: number | null; diff: CommitDiff | null }[];
}

const promotePath = (app: string) => `${PIPELINES_PATH}/apps/${encodeURIComponent(app)}/promote`;
const diffPath = (app: string) => `${PIPELINES_PATH}/apps/${encodeURIComponent(app)}/diff`;

/**
 * Each pipeline as a table in stage order, each app with its current release. Promote is offered
 * on every app of a stage before production (the stage after it may hold apps this principal does
 * not see; the command says so if it may not promote there), with the commits it would bring on
 * demand in a details fetched when first opened.
 */
export function pipelinesPanel(pipelines: PipelineRow[]): SafeHtml {
  return html`<section id="pipelines" hx-get="${PIPELINES_PATH}/panel" hx-trigger="rack-pipelines from:body" hx-swap="outerHTML" aria-label="pipelines">
${pipelines.length === 0
    ? html`<p class="empty">No pipelines you can see. An admin makes one with <code>ssh rack pipelines:create NAME</code>, then <code>pipelines:add APP --pipeline NAME --stage STAGE</code>.</p>`
    : pipelines.map(pipelineTable)}
</section>`;
}

function pipelineTable(p: PipelineRow): SafeHtml {
  const ordered = [...p.apps].sort((a, b) => PIPELINE_STAGES.indexOf(a.stage) - PIPELINE_STAGES.indexOf(b.stage) || a.app.localeCompare(b.app));
  return html`<h2>${p.name}</h2>
${ordered.length === 0
    ? html`<p class="empty">No apps: <code>pipelines:add APP --pipeline ${p.name} --stage STAGE</code>.</p>`
    : html`<div class="table-wrap"><table class="pipeline" data-pipeline="${p.name}">
<thead><tr><th>Stage</th><th>App</th><th>Release</th><th>Commit</th><th>When</th><th>Actions</th></tr></thead>
<tbody>${ordered.map((a) => appRow(a))}</tbody>
</table></div>`}`;
}

function appRow(a: PipelineRow['apps'][number]): SafeHtml {
  const last = a.stage === PIPELINE_STAGES[PIPELINE_STAGES.length - 1];
  const canPromote = !last && a.release !== null;
  const question = `Promote ${a.app} v${a.release ?? 0} to the next stage? Each app there gets a new release of the same image, with its own config.`;
  return html`<tr class="pipeline-app stage-${a.stage}" data-app="${a.app}">
<td>${a.stage}</td>
<td><a href="${appPath(a.app, '/releases')}">${a.app}</a></td>
<td class="release">${a.release === null ? html`<span class="empty">none yet</span>` : html`<strong>v${a.release}</strong> <span class="description">${a.description ?? ''}</span>`}</td>
<td>${a.commit ? html`<code>${a.commit.slice(0, 7)}</code>` : '-'}</td>
<td>${a.createdAt ? html`${timeAgo(a.createdAt)}` : '-'}</td>
<td>${canPromote
    ? html`<button type="button" class="promote" hx-post="${promotePath(a.app)}" hx-confirm="${question}" hx-target="#action" hx-swap="innerHTML">Promote</button>
<details class="pipeline-diff" data-keep="diff-${a.app}" hx-get="${diffPath(a.app)}" hx-trigger="toggle once" hx-target="find .diff-body" hx-swap="innerHTML"><summary>Commits to promote</summary><div class="diff-body">Loading…</div></details>`
    : ''}</td>
</tr>`;
}

const commitText = (c: CommitLine) => html`<code>${c.commit.slice(0, 7)}</code> ${c.subject} <span class="meta">(${c.author})</span>`;

/** `pipelines:diff`'s answer for the details: per app of the next stage, what it lacks. */
export function diffBody(d: PipelineDiff): SafeHtml {
  return html`${d.targets.map((t) => {
    const head = html`<p><strong>${t.app}</strong> ${t.release === null ? '(nothing released)' : `v${t.release}`} at ${t.stage}:</p>`;
    const diff = t.diff;
    if (!diff) return html`${head}<p class="note">runs nothing yet: everything in ${d.app} is new to it.</p>`;
    if (diff.kind === 'same') return html`${head}<p class="note">the same commit: nothing to promote.</p>`;
    if (diff.kind === 'unrelated') return html`${head}<p class="note">no shared history.</p>`;
    return html`${head}${diff.commits.length === 0 ? html`<p class="note">runs everything ${d.app} does.</p>` : html`<ul class="plain commits">${diff.commits.map((c) => html`<li>${commitText(c)}</li>`)}</ul>`}${
      diff.behind.length ? html`<p class="note">${t.app} runs ${diff.behind.length} commit(s) ${d.app} does not: a promotion would drop them.</p>` : ''
    }`;
  })}`;
}

/** The whole page: the box Promote's live lines go to, and the pipelines. */
export function pipelinesPage(pipelines: PipelineRow[]): SafeHtml {
  return html`<h1>Pipelines</h1>
<div id="action" class="action-area" aria-live="polite"></div>
${pipelinesPanel(pipelines)}`;
}
