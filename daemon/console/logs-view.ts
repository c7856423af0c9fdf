import { html, type SafeHtml } from './html-template.js';
import { appPath } from './layout-view.js';

const TYPE_OF = /^\S+ (?:app\[([A-Za-z0-9_-]+)\.|rack\[(router)\])/;

/** The Logs tab's search: as typed, given to `logs` as its flags (which check them). */
export interface LogSearch {
  since: string;
  until: string;
  grep: string;
}

export function readLogSearch(params: URLSearchParams): LogSearch {
  const get = (name: string) => (params.get(name) ?? '').trim();
  // The text is searched as typed: spaces at its ends may be what is looked for.
  return { since: get('since'), until: get('until'), grep: params.get('grep') ?? '' };
}

export function logQueryFlags(s: LogSearch): Record<string, string> {
  return { ...(s.since === '' ? {} : { since: s.since }), ...(s.until === '' ? {} : { until: s.until }), ...(s.grep === '' ? {} : { grep: s.grep }) };
}

/**
 * The Logs tab: the last kept lines (in a time range, holding a text, when the search asks), a
 * download of every line the search finds, then live ones from the page's stream (console.js
 * appends those holding the text), with a filter by process type and pause/resume.
 */
export function logsTab(app: string, lines: string[], types: string[], search: LogSearch = { since: '', until: '', grep: '' }): SafeHtml {
  const all = [...new Set([...types, 'router'])].sort();
  const query = new URLSearchParams(logQueryFlags(search)).toString();
  return html`<form method="get" class="row log-search">
<label>Since <input name="since" value="${search.since}" placeholder="2h or 2026-12-06T04:00" maxlength="40"></label>
<label>Until <input name="until" value="${search.until}" placeholder="30m or 2026-12-06T05:00" maxlength="40"></label>
<label>Text <input name="grep" value="${search.grep}" placeholder="exact text, case-sensitive" maxlength="200"></label>
<button type="submit">Search</button>
<a class="download" href="${appPath(app, `/logs/download${query ? `?${query}` : ''}`)}" download>Download</a>
</form>
<div class="row log-controls">
<label>Type <select id="log-type"><option value="">all</option>${all.map((t) => html`<option value="${t}">${t}</option>`)}</select></label>
<button type="button" id="log-pause" aria-pressed="false">Pause</button>
</div>
<pre id="log-lines" class="log" role="log" tabindex="0" aria-label="log lines" aria-live="off" data-grep="${search.grep}"${search.until ? html` data-until="${search.until}"` : ''}>${lines.map((l) => {
    const m = TYPE_OF.exec(l);
    return html`<span data-type="${m?.[1] ?? m?.[2] ?? ''}">${l}\n</span>`;
  })}</pre>`;
}
