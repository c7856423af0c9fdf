import { html, type SafeHtml } from './html-template.js';
import { appPath, when } from './layout-view.js';

/** A row of `addons --json`. */
export interface AddonRow {
  name: string;
  type: string;
  version: string;
  attached: { app: string; alias: string }[];
}

/** `addons:info NAME --json` (the part shown). */
export interface AddonInfo {
  name: string;
  type: string;
  version: string;
  status: string;
  size: number | null;
  attached: { app: string; alias: string }[];
  backups: number;
  nextScheduledBackup: string;
}

/** A row of `addons:backups NAME --json`. */
export interface BackupRow {
  id: string;
  bytes: number;
  trigger: string;
  createdAt: string;
  createdBy: string;
}

export interface AddonsView {
  app: string;
  /** The app's add-ons, each with its info and backups. */
  mine: { info: AddonInfo; backups: BackupRow[] }[];
  /** Add-ons the principal may attach here (attached elsewhere or to nothing). */
  others: AddonRow[];
  canChange: boolean;
}

export function formatSize(bytes: number | null): string {
  if (bytes === null) return '-';
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
}

/**
 * The Add-ons tab: create Postgres or Redis, each add-on's version, health and size, its backups
 * (take one, restore one) and attachments (attach another, detach). Every button runs the ssh
 * command of the same name, so the same roles may press it.
 */
export function addonsPanel(v: AddonsView): SafeHtml {
  const { app } = v;
  const post = (path: string, vals: Record<string, string>, label: string, confirm?: string) =>
    html`<button type="button" hx-post="${appPath(app, `/addons/${path}`)}" hx-vals="${JSON.stringify(vals)}"${confirm ? html` hx-confirm="${confirm}"` : ''} hx-target="#action" hx-swap="innerHTML">${label}</button>`;
  return html`<div id="addons" hx-get="${appPath(app, '/addons/panel')}" hx-trigger="rack-addons from:body" hx-swap="outerHTML">
${v.mine.length === 0 ? html`<p class="empty">${app} has no add-ons yet.</p>` : ''}
<ul class="cards">${v.mine.map(({ info, backups }) => {
    const alias = info.attached.find((a) => a.app === app)?.alias;
    const elsewhere = info.attached.filter((a) => a.app !== app);
    return html`<li class="card addon" data-addon="${info.name}">
<div class="card-head"><span class="app-name">${info.name}</span> <span class="badge">${info.type} ${info.version}</span> <span class="badge addon-status status-${info.status === 'healthy' || info.status === 'running' ? 'ok' : 'failed'}">${info.status}</span></div>
<div class="meta">${alias ? html`as <code>${alias}_URL</code>` : 'detached'} · size ${formatSize(info.size)}${elsewhere.length ? html` · also attached to ${elsewhere.map((a) => `${a.app} as ${a.alias}`).join(', ')}` : ''} · ${info.backups} backups, next scheduled <time datetime="${info.nextScheduledBackup}">${when(info.nextScheduledBackup)}</time></div>
${v.canChange ? html`<div class="row">${post('backup', { name: info.name }, 'Take a backup')} ${alias ? post('detach', { name: info.name }, 'Detach', `Detach ${info.name} from ${app}? Its variables go in a new release; the data stays.`) : ''}</div>` : ''}
<details data-keep="backups-${info.name}"><summary>Backups (${backups.length})</summary>
<div class="table-wrap"><table class="backups">
<thead><tr><th scope="col">Backup</th><th scope="col">Taken</th><th scope="col">Size</th><th scope="col">Why</th><th scope="col">By</th>${v.canChange ? html`<th scope="col"><span class="sr">Restore</span></th>` : ''}</tr></thead>
<tbody>${backups.length
      ? backups.map(
          (b) => html`<tr data-backup="${b.id}"><td>${b.id}</td><td><time datetime="${b.createdAt}">${when(b.createdAt)}</time></td><td>${formatSize(b.bytes)}</td><td>${b.trigger}</td><td>${b.createdBy}</td>${v.canChange
            ? html`<td>${post('restore', { name: info.name, backup: b.id }, 'Restore', `Replace the data of ${info.name} with ${b.id}? A backup of it is taken first.`)}</td>`
            : ''}</tr>`,
        )
      : html`<tr><td colspan="${v.canChange ? 6 : 5}" class="empty">No backups yet.</td></tr>`}</tbody>
</table></div>
</details>
</li>`;
  })}</ul>
${v.canChange
    ? html`<form class="row addon-create" hx-post="${appPath(app, '/addons/create')}" hx-target="#action" hx-swap="innerHTML">
<fieldset><legend>New add-on</legend>
<label>Type <select name="kind"><option value="postgres">Postgres</option><option value="redis">Redis</option></select></label>
<label>Name <input name="as" placeholder="(default: APP-postgres)" autocomplete="off"></label>
<button type="submit" class="primary">Create</button>
</fieldset></form>
${v.others.length
        ? html`<form class="row addon-attach" hx-post="${appPath(app, '/addons/attach')}" hx-target="#action" hx-swap="innerHTML">
<fieldset><legend>Attach an add-on</legend>
<label>Add-on <select name="name">${v.others.map((o) => html`<option value="${o.name}">${o.name} (${o.type})</option>`)}</select></label>
<label>As <input name="alias" placeholder="(default: DATABASE / REDIS)" autocomplete="off"></label>
<button type="submit">Attach</button>
</fieldset></form>`
        : ''}`
    : ''}
</div>`;
}

export function addonsTab(v: AddonsView): SafeHtml {
  return html`<div id="action" class="action-area" aria-live="polite"></div>
${addonsPanel(v)}`;
}
