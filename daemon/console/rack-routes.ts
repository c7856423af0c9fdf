import type { Caller } from '../access/principal.js';
import type { RackInfo } from '../commands/rack.js';
import { RackError } from '../rack-error.js';
import type { RackReleaseRecord } from '../store/records.js';
import type { UpdateCheck } from '../versions/rack-updates.js';
import { startAction } from './console-action.js';
import type { ConsoleCommands, LineSink } from './console-commands.js';
import { RACK_CHANNEL, type ConsoleEvents } from './console-events.js';
import { readForm, sendHtml, type ConsoleRequest } from './console-request.js';
import { serveEvents } from './event-stream.js';
import { actionBox, page } from './layout-view.js';
import { checkAnswer, RACK_PATH, rackPage, rackPanel, type RackView } from './rack-view.js';

/**
 * Everything under /console/rack: rack's version and ledger, "Check for update", and updates and
 * rollbacks as console actions. Each runs as its rack command (admin only), so a page of someone
 * else is refused by the command, not here. Over HTTP an update's command returns as its switch
 * begins; the panel then follows the ledger entry until the next rackd has finished it.
 */
export class RackRoutes {
  constructor(
    private readonly commands: ConsoleCommands,
    private readonly events: ConsoleEvents,
  ) {}

  async handle(r: ConsoleRequest, rest: string[]): Promise<void> {
    const method = r.req.method ?? 'GET';
    const [first = '', second, third] = rest;
    const key = `${method} ${first}${second === undefined ? '' : `/${/^\d{1,9}$/.test(second) ? 'N' : second}`}${third === undefined ? '' : `/${third}`}`;
    const c = r.caller;
    switch (key) {
      case 'GET ':
        return sendHtml(r.res, 200, page({ title: 'Rack', principal: c.principal, events: { url: `${RACK_PATH}/events`, from: this.events.startId(RACK_CHANNEL) }, body: rackPage(await this.view(c)) }));
      case 'GET panel':
        return sendHtml(r.res, 200, rackPanel(await this.view(c)));
      case 'GET events':
        // The stream tells of rack's updates: opened only for who may read the ledger.
        await this.commands.query(c, 'rack:releases', '');
        return serveEvents(r, this.events, RACK_CHANNEL);
      case 'POST check': {
        const { ref, from } = await this.target(r);
        const found = await this.commands.query<UpdateCheck>(c, 'rack:update', '', ref ? [ref] : [], { check: true, ...(from ? { from } : {}) });
        return sendHtml(r.res, 200, checkAnswer(found));
      }
      case 'POST update': {
        const { ref, from } = await this.target(r);
        return this.act(r, `Updating rack${ref ? ` to ${ref}` : ''}${from ? ` from ${from}` : ''}`, (sink) => this.commands.rackUpdate(c, ref, from, sink));
      }
      case 'POST releases/N/rollback': {
        const id = Number(second);
        return this.act(r, `Rolling rack back to r${id}`, (sink) => this.commands.rackRollback(c, id, sink));
      }
      default:
        throw new RackError('not_found', `nothing at ${r.url.pathname.slice(0, 100)}`);
    }
  }

  private async view(c: Caller): Promise<RackView> {
    // The ledger first: it is the admin's, so anyone else is refused before anything is shown.
    const ledger = await this.commands.query<RackReleaseRecord[]>(c, 'rack:releases', '');
    const info = await this.commands.query<RackInfo>(c, 'rack', '');
    return { info, ledger, now: Date.now() };
  }

  /** The form's ref and source; empty fields are the command's defaults. */
  private async target(r: ConsoleRequest): Promise<{ ref: string | undefined; from: string | undefined }> {
    const form = await readForm(r.req);
    return { ref: form.get('ref')?.trim() || undefined, from: form.get('from')?.trim() || undefined };
  }

  private async act(r: ConsoleRequest, title: string, run: (sink: LineSink) => Promise<unknown>): Promise<void> {
    const { action } = await startAction({
      events: this.events,
      app: RACK_CHANNEL,
      touches: ['ledger'],
      run,
      // The command has returned as the switch begins (or found nothing to do): the ledger tells the rest.
      outcome: async (ok) => (ok ? 'The releases below show how the switch goes.' : ''),
    });
    sendHtml(r.res, 200, actionBox(action, title));
  }
}
