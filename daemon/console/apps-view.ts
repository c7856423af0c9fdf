import { html, type SafeHtml } from './html-template.js';
import { appPath, when } from './layout-view.js';

export interface AppSummary {
  name: string;
  url: string;
  currentRelease: number;
  status?: string;
  deployedAt?: string;
  deployedBy?: string;
}

/** Every app the session may see: current release, status, URL, last deploy and who. */
export function appsPage(apps: AppSummary[]): SafeHtml {
  return html`<h1>Apps</h1>
${apps.length === 0
    ? html`<p class="empty">No apps yet: push one with <code>git push rack main</code>.</p>`
    : html`<ul class="cards">${apps.map(
        (a) => html`<li class="card app">
<div class="card-head"><a class="app-name" href="${appPath(a.name, '/releases')}">${a.name}</a> <span class="badge">${a.currentRelease ? `v${a.currentRelease}` : 'not deployed'}</span>${a.status ? html` <span class="badge status-${a.status}">${a.status}</span>` : ''}</div>
<div class="meta"><a href="${a.url}">${a.url}</a>${a.deployedAt ? html` · ${a.deployedBy ?? ''} · <time datetime="${a.deployedAt}">${when(a.deployedAt)}</time>` : ''}</div>
</li>`,
      )}</ul>`}`;
}

export function signInPage(message?: string): SafeHtml {
  return html`<h1>Sign in</h1>
<form method="post" action="/console/sign-in" class="stack sign-in">
${message ? html`<p class="error" role="alert">${message}</p>` : ''}
<label for="token">API token</label>
<input id="token" name="token" type="password" required autocomplete="current-password" placeholder="rack_…">
<p class="note">Make one with <code>ssh rack tokens:create NAME</code>. A token for some apps signs in to those apps only.</p>
<button type="submit" class="primary">Sign in</button>
</form>`;
}
