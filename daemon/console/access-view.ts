import { html, type SafeHtml } from './html-template.js';
import { timeAgo } from './layout-view.js';

export interface TokenRow {
  name: string;
  role: string;
  apps: string[];
  createdAt: string;
  createdBy: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
}

export interface KeyRow {
  name: string;
  role: string;
  apps: string[];
  fingerprint: string;
  createdAt: string;
}

const scope = (role: string, apps: string[]) => (role === 'admin' ? 'all apps' : apps.join(', '));

/** The Access page (admins): API tokens and SSH keys, each listed, made and removed here. */
export function accessPanel(tokens: TokenRow[], keys: KeyRow[]): SafeHtml {
  return html`<div id="access-panel" hx-get="/console/access/panel" hx-trigger="rack-access from:body" hx-swap="outerHTML">
<h2>API tokens</h2>
<div class="table-wrap"><table>
<thead><tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">Apps</th><th scope="col">Expires</th><th scope="col">Last used</th><th scope="col">Actions</th></tr></thead>
<tbody>${tokens.map(
    (t) => html`<tr><td><code>${t.name}</code></td><td>${t.role}</td><td>${scope(t.role, t.apps)}</td><td>${t.expiresAt ? timeAgo(t.expiresAt) : 'never'}</td><td>${timeAgo(t.lastUsedAt)}</td>
<td><button type="button" hx-post="/console/access/tokens/revoke" hx-vals="${JSON.stringify({ name: t.name })}" hx-confirm="Revoke token ${t.name}? It stops working at once." hx-target="#access-result" hx-swap="innerHTML">Revoke</button></td></tr>`,
  )}</tbody>
</table></div>
<h2>SSH keys</h2>
<div class="table-wrap"><table>
<thead><tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">Apps</th><th scope="col">Fingerprint</th><th scope="col">Actions</th></tr></thead>
<tbody>${keys.map(
    (k) => html`<tr><td><code>${k.name}</code></td><td>${k.role}</td><td>${scope(k.role, k.apps)}</td><td><code>${k.fingerprint}</code></td>
<td><button type="button" hx-post="/console/access/keys/remove" hx-vals="${JSON.stringify({ name: k.name })}" hx-confirm="Remove key ${k.name}?" hx-target="#access-result" hx-swap="innerHTML">Remove</button></td></tr>`,
  )}</tbody>
</table></div>
</div>`;
}

export function accessPage(tokens: TokenRow[], keys: KeyRow[]): SafeHtml {
  return html`<h1>Access</h1>
<div id="access-result" aria-live="polite"></div>
${accessPanel(tokens, keys)}
<form class="stack" hx-post="/console/access/tokens" hx-target="#access-result" hx-swap="innerHTML">
<h2>New token</h2>
<label>Name <input name="name" required autocomplete="off"></label>
<label>Apps (comma-separated; none: admin) <input name="apps" autocomplete="off"></label>
<label><input type="checkbox" name="deploy-only" value="yes"> deploy-only</label>
<label>Expires (e.g. 30d; empty: never) <input name="expires" autocomplete="off"></label>
<button type="submit">Create token</button>
</form>
<form class="stack" hx-post="/console/access/keys" hx-target="#access-result" hx-swap="innerHTML">
<h2>New SSH key</h2>
<label>Name <input name="name" required autocomplete="off"></label>
<label>Apps (comma-separated; none: admin) <input name="apps" autocomplete="off"></label>
<label><input type="checkbox" name="deploy-only" value="yes"> deploy-only</label>
<label>Public key <textarea name="key" required rows="3"></textarea></label>
<button type="submit">Add key</button>
</form>`;
}

export function createdToken(name: string, token: string): SafeHtml {
  return html`<div class="secret" role="status"><p>Token <code>${name}</code> created. Copy it now: it is shown this once; rack keeps only its hash.</p>
<p><code class="token" id="new-token">${token}</code> <button type="button" class="copy" data-copy="new-token">Copy</button></p></div>`;
}
