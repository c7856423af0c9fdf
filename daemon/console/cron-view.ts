import type { JobView } from '../cron/scheduled-jobs.js';
import { html, type SafeHtml } from './html-template.js';
import { when } from './layout-view.js';

function lastRun(job: JobView): SafeHtml | string {
  const run = job.lastRun;
  if (!run) return 'never';
  const outcome = run.finishedAt === undefined ? 'running' : run.exitCode === undefined ? (run.error ?? 'failed') : `exit ${run.exitCode}`;
  return html`<time datetime="${run.startedAt}">${when(run.startedAt)}</time> (${outcome})`;
}

/**
 * The Scheduled jobs tab: app.json `cron` of the current release, read only (suspending and
 * running one are `cron:suspend`/`cron:run` over ssh or the API).
 */
export function cronTab(app: string, jobs: JobView[]): SafeHtml {
  return html`<div class="table-wrap"><table>
<thead><tr><th scope="col">Job</th><th scope="col">Schedule (UTC)</th><th scope="col">Command</th><th scope="col">Next run</th><th scope="col">Last run</th><th scope="col">State</th></tr></thead>
<tbody>${jobs.length
    ? jobs.map(
        (j) => html`<tr><td><code>${j.id}</code></td><td><code>${j.schedule}</code></td><td><code>${j.command}</code></td><td>${j.nextRun ? html`<time datetime="${j.nextRun}">${when(j.nextRun)}</time>` : '-'}</td><td>${lastRun(j)}</td><td>${j.suspended ? 'suspended' : j.runningSince ? 'running' : 'active'}</td></tr>`,
      )
    : html`<tr><td colspan="6" class="empty">${app} has no scheduled jobs: add "cron" to app.json.</td></tr>`}</tbody>
</table></div>`;
}
