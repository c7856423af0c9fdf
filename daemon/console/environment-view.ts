import { html, type SafeHtml } from './html-template.js';
import { appPath } from './layout-view.js';

const NEW_ROWS = 4;
/** What the browser says of a name its pattern refuses (the server's check says the same). */
export const NAME_RULE = 'letters, digits and _, not starting with a digit (like DATABASE_URL)';

/**
 * The Environment tab. Values are masked, each with a Reveal (a request the server answers only
 * for principals that may read values). One form adds, changes and removes several variables:
 * Apply Changes makes one release and rolls it out; Save without deploying only records it.
 */
export function environmentPanel(app: string, names: string[], valuesReadable: boolean, canChange: boolean, addonKeys: Map<string, string> = new Map()): SafeHtml {
  const rows = names.map((k, i) => {
    const addon = addonKeys.get(k);
    // An add-on's variables change only with the add-on (addons:detach): no field that would be refused.
    const change = addon !== undefined
      ? html`<td colspan="2" class="note addon-owned">set by add-on <code>${addon}</code></td>`
      : html`<td><label class="sr" for="set-${i}">New value of ${k}</label><input id="set-${i}" name="set:${k}" autocomplete="off" placeholder="unchanged"></td>
<td><label><input type="checkbox" name="unset" value="${k}"> remove</label></td>`;
    return html`<tr${addon !== undefined ? html` data-addon="${addon}"` : ''}>
<th scope="row"><code>${k}</code></th>
<td><span class="masked" id="value-${i}">•••</span>${valuesReadable ? html` <button type="button" class="reveal" hx-get="${appPath(app, `/environment/value?key=${encodeURIComponent(k)}`)}" hx-target="#value-${i}" hx-swap="innerHTML" aria-label="Reveal ${k}">Reveal</button>` : ''}</td>
${canChange ? change : ''}
</tr>`;
  });
  const blanks = Array.from({ length: NEW_ROWS }, (_, i) => html`<div class="row new-var">
<label>Name <input name="new-key" autocomplete="off" pattern="[A-Za-z_][A-Za-z0-9_]*" title="Use ${NAME_RULE}" aria-label="New variable ${i + 1} name"></label>
<label>Value <input name="new-value" autocomplete="off" aria-label="New variable ${i + 1} value"></label>
</div>`);
  return html`<div id="env-panel" hx-get="${appPath(app, '/environment/panel')}" hx-trigger="rack-config from:body" hx-swap="outerHTML">
${valuesReadable ? '' : html`<p class="note">This token may not read config values: names only.</p>`}
<form id="environment" hx-post="${appPath(app, '/environment')}" hx-target="#action" hx-swap="innerHTML">
<div class="table-wrap"><table class="env">
<thead><tr><th scope="col">Name</th><th scope="col">Value</th>${canChange ? html`<th scope="col">Change</th><th scope="col">Remove</th>` : ''}</tr></thead>
<tbody>${rows.length ? rows : html`<tr><td colspan="4" class="empty">No config vars yet.</td></tr>`}</tbody>
</table></div>
${canChange
    ? html`<fieldset><legend>Add variables</legend><p class="note">Names: ${NAME_RULE}.</p>${blanks}</fieldset>
<div class="row">
<button type="submit" name="deploy" value="yes" class="primary">Apply Changes</button>
<button type="submit" name="deploy" value="no">Save without deploying</button>
</div>`
    : ''}
</form>
</div>`;
}

export function environmentTab(app: string, names: string[], valuesReadable: boolean, canChange: boolean, addonKeys: Map<string, string> = new Map()): SafeHtml {
  return html`${environmentPanel(app, names, valuesReadable, canChange, addonKeys)}
<div id="action" class="action-area" aria-live="polite"></div>`;
}
