import { html, type SafeHtml } from './html-template.js';

const TYPE_OF = /^\S+ (?:app\[([A-Za-z0-9_-]+)\.|rack\[(router)\])/;

/**
 * The Logs tab: the last kept lines (since a time, holding a text, when the search asks), then live
 * ones from the page's stream (console.js appends those holding the text), with a filter by process
 * type and pause/resume.
 */
export function logsTab(lines: string[], types: string[], search: { since: string; grep: string } = { since: '', grep: '' }): SafeHtml {
  const all = [...new Set([...types, 'router'])].sort();
  return html`<form method="get" class="row log-search">
<label>Since <input name="since" value="${search.since}" placeholder="2h or 2026-12-06T04:00" maxlength="40"></label>
<label>Text <input name="grep" value="${search.grep}" placeholder="exact text, case-sensitive" maxlength="200"></label>
<button type="submit">Search</button>
</form>
<div class="row log-controls">
<label>Type <select id="log-type"><option value="">all</option>${all.map((t) => html`<option value="${t}">${t}</option>`)}</select></label>
<button type="button" id="log-pause" aria-pressed="false">Pause</button>
</div>
<pre id="log-lines" class="log" tabindex="0" aria-label="log lines" aria-live="off" data-grep="${search.grep}">${lines.map((l) => {
    const m = TYPE_OF.exec(l);
    return html`<span data-type="${m?.[1] ?? m?.[2] ?? ''}">${l}\n</span>`;
  })}</pre>`;
}
