import type { LineSink } from './console-commands.js';
import type { ConsoleEvent } from './console-events.js';
import type { ConsoleRequest } from './console-request.js';
import type { SafeHtml } from './html-template.js';
import type { AppTab } from './layout-view.js';

export type Touch = Extract<ConsoleEvent, { type: 'changed' }>['what'];

/** What an app's routes answer with: a whole tab, or a started change's live box. */
export interface AppPage {
  tab(r: ConsoleRequest, app: string, tab: AppTab, title: string, body: SafeHtml): void;
  act(r: ConsoleRequest, app: string, title: string, touches: Touch[], run: (sink: LineSink) => Promise<unknown>, ended?: { ok?: string; failed?: string }): Promise<void>;
}
