import { html, type SafeHtml } from './html-template.js';
import { appPath } from './layout-view.js';

/** The Domains tab: the default host and the added ones, with add and remove. */
export function domainsPanel(app: string, info: { default: string; domains: string[] }, canChange: boolean): SafeHtml {
  return html`<div id="domains" hx-get="${appPath(app, '/domains/panel')}" hx-trigger="rack-domains from:body" hx-swap="outerHTML">
<ul class="plain">
<li><code>${info.default}</code> (default)</li>
${info.domains.map(
    (d) => html`<li><code>${d}</code>${canChange ? html` <button type="button" hx-post="${appPath(app, '/domains/remove')}" hx-vals="${JSON.stringify({ host: d })}" hx-confirm="Stop serving ${app} on ${d}?" hx-target="#action" hx-swap="innerHTML">Remove</button>` : ''}</li>`,
  )}
</ul>
${canChange
    ? html`<form class="row" hx-post="${appPath(app, '/domains/add')}" hx-target="#action" hx-swap="innerHTML">
<label>Host <input name="host" required placeholder="www.example.com" autocomplete="off"></label>
<button type="submit">Add domain</button>
</form>`
    : ''}
</div>`;
}

/** The whole tab: the panel (fetched again on its own) and the one box its answers replace. */
export function domainsTab(app: string, info: { default: string; domains: string[] }, canChange: boolean, after: SafeHtml = html``): SafeHtml {
  return html`${domainsPanel(app, info, canChange)}${after}
<div id="action" class="action-area" aria-live="polite"></div>`;
}
