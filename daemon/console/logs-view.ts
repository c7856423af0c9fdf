import { html, type SafeHtml } from './html-template.js';

const TYPE_OF = /^\S+ (?:app\[([A-Za-z0-9_-]+)\.|rack\[(router)\])/;

/**
 * The Logs tab: the recent lines, then live ones from the page's stream (console.js appends them
 * as text), with a filter by process type and pause/resume.
 */
export function logsTab(lines: string[], types: string[]): SafeHtml {
  const all = [...new Set([...types, 'router'])].sort();
  return html`<div class="row log-controls">
<label>Type <select id="log-type"><option value="">all</option>${all.map((t) => html`<option value="${t}">${t}</option>`)}</select></label>
<button type="button" id="log-pause" aria-pressed="false">Pause</button>
</div>
<pre id="log-lines" class="log" aria-live="off">${lines.map((l) => {
    const m = TYPE_OF.exec(l);
    return html`<span data-type="${m?.[1] ?? m?.[2] ?? ''}">${l}\n</span>`;
  })}</pre>`;
}
