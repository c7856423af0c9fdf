import { formatUptime } from '../commands/rack.js';
import { html, type SafeHtml } from './html-template.js';
import { appPath } from './layout-view.js';

/** A process as `ps --json` gives it. */
export interface ProcessRow {
  name: string;
  type: string;
  release: number;
  state: string;
  restarts: number;
  limits: string;
  startedAt: string | null;
  /** Seconds; null while not running. */
  uptime: number | null;
}

/** The Processes tab: what runs, a count per type to scale to, and restarts. */
export function processesPanel(app: string, processes: ProcessRow[], formation: Record<string, number>, canChange: boolean, maintenance = false): SafeHtml {
  const types = [...new Set([...Object.keys(formation), ...processes.map((p) => p.type)])].sort();
  return html`<div id="processes" hx-get="${appPath(app, '/processes/panel')}" hx-trigger="rack-processes from:body" hx-swap="outerHTML">
<div class="table-wrap"><table>
<thead><tr><th scope="col">Process</th><th scope="col">Release</th><th scope="col">State</th><th scope="col">Uptime</th><th scope="col">Restarts</th><th scope="col">Limits</th></tr></thead>
<tbody>${processes.length
    ? processes.map((p) => html`<tr><td><code>${p.name}</code></td><td>v${p.release}</td><td>${p.state}</td><td>${p.uptime === null ? '-' : formatUptime(p.uptime)}</td><td>${p.restarts}</td><td>${p.limits}</td></tr>`)
    : html`<tr><td colspan="6" class="empty">No processes running.</td></tr>`}</tbody>
</table></div>
${canChange && types.length
    ? html`<form class="scale" hx-post="${appPath(app, '/processes/scale')}" hx-target="#action" hx-swap="innerHTML">
<fieldset><legend>Scale</legend>
${types.map((t) => {
      const count = formation[t] ?? processes.filter((p) => p.type === t).length;
      // `was:` is what this page showed: only the counts the user changed are sent to ps:scale.
      return html`<label>${t} <input type="number" name="count:${t}" min="0" max="20" value="${count}"></label><input type="hidden" name="was:${t}" value="${count}"> `;
    })}
<button type="submit">Scale</button>
</fieldset></form>
<form class="row" hx-post="${appPath(app, '/processes/restart')}" hx-target="#action" hx-swap="innerHTML">
<button type="submit" name="type" value="">Restart all</button>
${types.map((t) => html`<button type="submit" name="type" value="${t}">Restart ${t}</button> `)}
</form>`
    : ''}
${maintenancePart(app, maintenance, canChange)}
</div>`;
}

/** Maintenance mode (`maintenance:on|off`): the router answers 503 with a page, the processes run on. */
function maintenancePart(app: string, on: boolean, canChange: boolean): SafeHtml {
  const state = html`<p class="maintenance">Maintenance mode is <strong>${on ? 'on' : 'off'}</strong>${on ? ': visitors get a 503 page; the processes keep running.' : '.'}</p>`;
  if (!canChange) return state;
  return html`<form class="row" hx-post="${appPath(app, '/processes/maintenance')}" hx-target="#action" hx-swap="innerHTML">
${state}<button type="submit" name="on" value="${on ? 'off' : 'on'}">Turn maintenance ${on ? 'off' : 'on'}</button>
</form>`;
}

export function processesTab(app: string, processes: ProcessRow[], formation: Record<string, number>, canChange: boolean, maintenance = false): SafeHtml {
  return html`${processesPanel(app, processes, formation, canChange, maintenance)}
<div id="action" class="action-area" aria-live="polite"></div>`;
}
