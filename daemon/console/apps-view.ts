import { html, type SafeHtml } from './html-template.js';
import { appPath, timeAgo } from './layout-view.js';

export interface AppSummary {
  name: string;
  url: string;
  currentRelease: number;
  status?: string;
  deployedAt?: string;
  deployedBy?: string;
  /** The error of the last deploy when it failed (a release that never served, or a failed build). */
  lastFailed?: string;
}

const NAME_RULE = '1-30 lower-case letters, digits and single dashes, starting with a letter';

/** Every app the session may see (and, for who may, the form that creates one). */
export function appsPage(apps: AppSummary[], can: { create: boolean; destroy: boolean }, destroyed?: string): SafeHtml {
  const canCreate = can.create;
  return html`<h1>Apps</h1>
${destroyed ? html`<p class="note destroyed" role="status">Destroyed ${destroyed}.</p>` : ''}
${canCreate
    ? html`<form class="row create-app" hx-post="/console/apps" hx-target="#create-result" hx-swap="innerHTML">
<label>New app <input name="name" required autocomplete="off" maxlength="30" pattern="[a-z][a-z0-9]*(-[a-z0-9]+)*" title="${NAME_RULE}" placeholder="my-app"></label>
<button type="submit">Create app</button>
</form>
<div id="create-result" aria-live="polite"></div>`
    : ''}
${appsList(apps, can.destroy)}`;
}

/** The list part, fetched again when an app is created here. */
export function appsList(apps: AppSummary[], canDestroy: boolean): SafeHtml {
  return html`<section id="apps" hx-get="/console/app-list" hx-trigger="rack-apps from:body" hx-swap="outerHTML" aria-label="apps">
${apps.length === 0
    ? html`<p class="empty">No apps yet: push one with <code>git push rack main</code>.</p>`
    : html`<ul class="cards">${apps.map(
        (a) => html`<li class="card app">
<div class="card-head"><a class="app-name" href="${appPath(a.name, '/')}">${a.name}</a> <span class="badge">${a.currentRelease ? `v${a.currentRelease}` : a.lastFailed ? 'never served' : 'not deployed'}</span>${a.status ? html` <span class="badge status-${a.status}">${a.status}</span>` : ''}${a.lastFailed ? html` <span class="badge status-failed last-failed">last deploy failed</span>` : ''}</div>
<div class="meta"><a href="${a.url}">${a.url}</a>${a.deployedAt ? html` · ${a.deployedBy ?? ''} · ${timeAgo(a.deployedAt)}` : ''}</div>
${a.lastFailed ? html`<p class="reason">${a.lastFailed}</p>` : ''}
${canDestroy ? html`<a class="destroy" href="${appPath(a.name, '/destroy')}">Destroy ${a.name}…</a>` : ''}
</li>`,
      )}</ul>`}
</section>`;
}

/** What a created app is pushed with: its git remote, and the first push. */
export function createdApp(name: string, gitRemote: string): SafeHtml {
  return html`<div class="secret created-app" role="status"><p>Created <a href="${appPath(name)}">${name}</a>. Push code to it from your repository:</p>
<pre class="live">git remote add rack ${gitRemote}
git push rack main</pre></div>`;
}

/** Destroying an app: what goes, and the name typed again to confirm (apps:destroy --confirm). */
export function destroyPage(app: string): SafeHtml {
  return html`<h2>Destroy ${app}</h2>
<p>This stops ${app}'s processes and removes its containers, images, repository, build cache, releases and logs. Add-ons are kept, detached. It cannot be undone.</p>
<form method="post" action="${appPath(app, '/destroy')}" class="stack destroy-app">
<label for="confirm">Type <code>${app}</code> to confirm</label>
<input id="confirm" name="confirm" required autocomplete="off">
<button type="submit" class="danger">Destroy ${app}</button>
</form>`;
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
