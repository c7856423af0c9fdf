import type { DeliveryOutcome } from '../store/records.js';
import { html, type SafeHtml } from './html-template.js';
import { appPath, timeAgo } from './layout-view.js';

/** `repo:info --json`: the secret is only ever the word `set`, the token only whether there is one. */
export interface RepoInfo {
  url: string;
  transport: 'http' | 'ssh';
  branch: string;
  webhookUrl: string;
  token: boolean;
  /** `repo:connect --status-api URL`, where review apps' commit statuses go instead of the host's own API (absent from a rack before that flag). */
  statusApi?: string | null;
  deployKey: string | null;
  reviewApps: boolean;
  createdAt: string;
  createdBy: string;
  lastDelivery: DeliveryOutcome | null;
}

/** `reviewapps --json`. */
export interface ReviewAppRow {
  name: string;
  pullRequest: number;
  release: string | null;
  url: string;
}

export interface DeploysView {
  app: string;
  /** Absent when no repository is connected. */
  repo: RepoInfo | undefined;
  reviewApps: ReviewAppRow[];
  /** Whether to offer Enable/Disable (the command still checks the click). */
  canChange: boolean;
}

/**
 * The Deploys tab's panel: the connected repository (never its secret or token, only whether a
 * token is set), the last webhook delivery and its result, and the review apps. Connecting is
 * left to ssh, so no secret is ever typed into or shown by a page.
 */
export function deploysPanel(view: DeploysView): SafeHtml {
  const { app, repo } = view;
  const url = appPath(app, '/deploys/panel');
  if (!repo) {
    return html`<section id="deploys" hx-get="${url}" hx-trigger="rack-repo from:body" hx-swap="outerHTML" aria-label="repository">
<p class="empty">No repository is connected. Connect one with <code>ssh rack repo:connect URL -a ${app}</code>.</p>
</section>`;
  }
  const last = repo.lastDelivery;
  const toggle = repo.reviewApps ? 'disable' : 'enable';
  return html`<section id="deploys" hx-get="${url}" hx-trigger="rack-repo from:body" hx-swap="outerHTML" aria-label="repository">
<h2>Repository</h2>
<dl class="facts repo">
<dt>URL</dt><dd><code class="repo-url">${repo.url}</code></dd>
<dt>Branch</dt><dd class="repo-branch">${repo.branch}</dd>
<dt>Transport</dt><dd>${repo.transport === 'ssh' ? 'ssh (deploy key)' : repo.url.startsWith('https:') ? 'https' : 'http'}</dd>
<dt>Webhook</dt><dd><code class="webhook-url">${repo.webhookUrl}</code></dd>
<dt>Secret</dt><dd>set (shown once at <code>repo:connect</code>; connect again for a new one)</dd>
<dt>Token</dt><dd>${repo.token ? 'set' : 'none'}</dd>
${repo.statusApi ? html`<dt>Commit statuses</dt><dd><code>${repo.statusApi}</code></dd>` : ''}
${repo.deployKey ? html`<dt>Deploy key</dt><dd><code>${repo.deployKey}</code></dd>` : ''}
<dt>Connected</dt><dd>${timeAgo(repo.createdAt)} by ${repo.createdBy}</dd>
<dt>Last delivery</dt><dd class="last-delivery">${last
    ? html`${timeAgo(last.at)} ${last.host} ${last.event}${last.commit ? html` <code>${last.commit.slice(0, 7)}</code>` : ''}: <span class="delivery-result">${last.result}</span>`
    : 'none yet'}</dd>
</dl>
<h2>Review apps</h2>
<p class="review-state">Review apps are <strong>${repo.reviewApps ? 'on' : 'off'}</strong>${repo.reviewApps ? `: each pull request opened or updated makes ${app}-pr-N.` : '.'}
${view.canChange
    ? html`<button type="button" class="review-toggle" hx-post="${appPath(app, `/deploys/review-apps/${toggle}`)}" hx-target="#action" hx-swap="innerHTML">${repo.reviewApps ? 'Disable' : 'Enable'}</button>`
    : ''}</p>
${view.reviewApps.length === 0
    ? html`<p class="empty">No review apps.</p>`
    : html`<div class="table-wrap"><table class="review-apps">
<thead><tr><th>App</th><th>Pull request</th><th>State</th><th>URL</th></tr></thead>
<tbody>${view.reviewApps.map(
        (r) => html`<tr data-app="${r.name}"><td><a href="${appPath(r.name, '/releases')}">${r.name}</a></td><td>#${r.pullRequest}</td><td>${r.release ? `${r.release} serving` : 'not deployed yet'}</td><td><a href="${r.url}">${r.url}</a></td></tr>`,
      )}</tbody>
</table></div>`}
</section>`;
}

/** The whole tab: the box the toggle's answer goes to, and the panel. */
export function deploysTab(view: DeploysView): SafeHtml {
  return html`<div id="action" class="action-area" aria-live="polite"></div>
${deploysPanel(view)}`;
}
