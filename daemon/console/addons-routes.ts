import type { Caller } from '../access/principal.js';
import { RackError } from '../rack-error.js';
import { addonsPanel, addonsTab, type AddonInfo, type AddonRow, type AddonsView, type BackupRow } from './addons-view.js';
import type { AppPage } from './app-page.js';
import type { ConsoleCommands } from './console-commands.js';
import { readForm, sendHtml, type ConsoleRequest } from './console-request.js';
import { html, type SafeHtml } from './html-template.js';

/**
 * The Add-ons tab and its changes. Each change is the ssh command of the same name run through
 * `invoke`, so who may press what is decided there (a deploy-only token: nothing; an app's key: the
 * add-ons attached to its apps), and its lines stream into the page as over ssh.
 */
export class AddonsRoutes {
  constructor(
    private readonly commands: ConsoleCommands,
    private readonly page: AppPage,
  ) {}

  /** `verb` is the path's part after `addons/` (empty for the tab itself). */
  async handle(r: ConsoleRequest, app: string, method: string, verb: string): Promise<void> {
    const c = r.caller;
    const q = this.commands;
    if (method === 'GET' && verb === '') return this.page.tab(r, app, 'addons', 'Add-ons', await this.body(c, app, false));
    if (method === 'GET' && verb === 'panel') return sendHtml(r.res, 200, await this.body(c, app, true));
    if (method !== 'POST') throw new RackError('not_found', `nothing at ${r.url.pathname.slice(0, 100)}`);
    const form = await readForm(r.req);
    const field = (name: string) => (form.get(name) ?? '').trim();
    const name = field('name');
    const touches = ['addons', 'releases', 'config', 'processes'] as const;
    switch (verb) {
      case 'create': {
        const kind = field('kind');
        const as = field('as');
        return this.page.act(r, app, `Creating ${kind}${as ? ` ${as}` : ''}`, [...touches], (sink) => q.change(c, 'addons:create', app, [kind], as ? { as } : {}, sink));
      }
      case 'attach': {
        const alias = field('alias');
        return this.page.act(r, app, `Attaching ${name}`, [...touches], (sink) => q.change(c, 'addons:attach', app, [name], alias ? { as: alias } : {}, sink));
      }
      case 'detach':
        return this.page.act(r, app, `Detaching ${name}`, [...touches], (sink) => q.change(c, 'addons:detach', app, [name], {}, sink));
      case 'backup':
        return this.page.act(r, app, `Backing up ${name}`, ['addons'], (sink) => q.change(c, 'addons:backup', '', [name], {}, sink));
      case 'restore': {
        const backup = field('backup');
        return this.page.act(r, app, `Restoring ${name} from ${backup}`, ['addons'], (sink) => q.change(c, 'addons:restore', '', [name, backup], {}, sink));
      }
      default:
        throw new RackError('not_found', `nothing at ${r.url.pathname.slice(0, 100)}`);
    }
  }

  private async body(c: Caller, app: string, panelOnly: boolean): Promise<SafeHtml> {
    let all: AddonRow[];
    try {
      all = await this.commands.query<AddonRow[]>(c, 'addons', '');
    } catch (err) {
      const error = RackError.from(err);
      if (error.code !== 'forbidden') throw err;
      return html`<p class="note" id="addons">${error.message}</p>`;
    }
    const view: AddonsView = {
      app,
      mine: await Promise.all(
        all
          .filter((a) => a.attached.some((x) => x.app === app))
          .map(async (a) => ({
            info: await this.commands.query<AddonInfo>(c, 'addons:info', '', [a.name]),
            backups: await this.commands.query<BackupRow[]>(c, 'addons:backups', '', [a.name]),
          })),
      ),
      others: all.filter((a) => !a.attached.some((x) => x.app === app)),
      canChange: c.principal.role !== 'deploy',
    };
    return panelOnly ? addonsPanel(view) : addonsTab(view);
  }
}
