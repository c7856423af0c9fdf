import type { AuditEntry } from '../store/records.js';
import { html, type SafeHtml } from './html-template.js';
import { timeAgo } from './layout-view.js';

/** The audit log: who changed what, from where, newest first. */
export function auditTable(entries: AuditEntry[], showApp: boolean): SafeHtml {
  return html`<div class="table-wrap"><table class="audit">
<thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">From</th>${showApp ? html`<th scope="col">App</th>` : ''}<th scope="col">Action</th><th scope="col">Outcome</th><th scope="col">Detail</th></tr></thead>
<tbody>${entries.length
    ? entries.map(
        (e) => html`<tr class="outcome-${e.outcome === 'ok' ? 'ok' : 'failed'}"><td>${timeAgo(e.time)}</td><td>${e.actor.kind} ${e.actor.name}</td><td>${e.via} ${e.address}</td>${showApp ? html`<td>${e.app ?? '-'}</td>` : ''}<td><code>${e.action}</code></td><td>${e.outcome}</td><td>${e.detail}</td></tr>`,
      )
    : html`<tr><td colspan="7" class="empty">No changes recorded yet.</td></tr>`}</tbody>
</table></div>`;
}
