import { assertAppName } from '../app-name.js';
import { RackError } from '../rack-error.js';
import { startAction } from './console-action.js';
import type { ConsoleCommands } from './console-commands.js';
import { pipelinesChannel, type ConsoleEvents } from './console-events.js';
import { sendHtml, type ConsoleRequest } from './console-request.js';
import { serveEvents } from './event-stream.js';
import { actionBox, page } from './layout-view.js';
import { diffBody, PIPELINES_PATH, pipelinesPage, pipelinesPanel, type PipelineDiff, type PipelineRow } from './pipelines-view.js';

/**
 * Everything under /console/pipelines: what `pipelines` shows the principal, Promote as a console
 * action and `pipelines:diff` on demand. Each runs as its command, so what one may see and promote
 * is the command's answer, not this page's. The page's stream is the principal's own: promotions
 * print the apps of stages another principal may not see.
 */
export class PipelinesRoutes {
  constructor(
    private readonly commands: ConsoleCommands,
    private readonly events: ConsoleEvents,
  ) {}

  async handle(r: ConsoleRequest, rest: string[]): Promise<void> {
    const method = r.req.method ?? 'GET';
    const [first = '', app, verb] = rest;
    const key = `${method} ${first}${app === undefined ? '' : '/APP'}${verb === undefined ? '' : `/${verb}`}`;
    const c = r.caller;
    const channel = pipelinesChannel(c.principal);
    switch (key) {
      case 'GET ':
        return sendHtml(r.res, 200, page({ title: 'Pipelines', principal: c.principal, events: { url: `${PIPELINES_PATH}/events`, from: this.events.startId(channel) }, body: pipelinesPage(await this.list(r)) }));
      case 'GET panel':
        return sendHtml(r.res, 200, pipelinesPanel(await this.list(r)));
      case 'GET events':
        return serveEvents(r, this.events, channel);
      case 'GET apps/APP/diff': {
        const name = assertAppName(app!);
        return sendHtml(r.res, 200, diffBody(await this.commands.query<PipelineDiff>(c, 'pipelines:diff', name)));
      }
      case 'POST apps/APP/promote': {
        const name = assertAppName(app!);
        const { action } = await startAction({ events: this.events, app: channel, touches: ['pipelines'], run: (sink) => this.commands.pipelinePromote(c, name, sink) });
        return sendHtml(r.res, 200, actionBox(action, `Promoting ${name}`));
      }
      default:
        throw new RackError('not_found', `nothing at ${r.url.pathname.slice(0, 100)}`);
    }
  }

  private list(r: ConsoleRequest): Promise<PipelineRow[]> {
    return this.commands.query<PipelineRow[]>(r.caller, 'pipelines', '');
  }
}
