import { randomBytes } from 'node:crypto';
import { RackError } from '../rack-error.js';
import type { LineSink } from './console-commands.js';
import type { ConsoleEvent, ConsoleEvents } from './console-events.js';

/** How long a started action is waited for before the page is answered "started": refusals and bad input come back at once. */
const EARLY_MS = 600;

/** What fails before any work started: the request's own answer when it comes before EARLY_MS. */
const REFUSALS = new Set(['forbidden', 'bad_argument', 'bad_app_name', 'no_such_app', 'no_such_release', 'no_such_build', 'unauthorized']);

/**
 * Runs one console change in the background: its user lines go to the app's page stream as they
 * come, its end as a `done` event (with `outcome` telling what serves after a failure), then the
 * lists it touched are told to fetch themselves again. A refusal or bad input that comes back at
 * once is thrown, so the request answers with its status (403, 400) instead of "started".
 */
export async function startAction(opts: {
  events: ConsoleEvents;
  app: string;
  touches: Extract<ConsoleEvent, { type: 'changed' }>['what'][];
  run: (sink: LineSink) => Promise<unknown>;
  outcome?: (ok: boolean) => Promise<string>;
}): Promise<{ action: string; result: Promise<unknown> }> {
  const { events, app } = opts;
  const action = randomBytes(6).toString('hex');
  const sink: LineSink = (text) => events.publish(app, { type: 'line', action, text });
  // Until the page is answered, a refusal is the request's own answer (403, 400): nothing was done,
  // so there is no outcome to tell and no list to fetch again.
  let answering = true;
  const result = opts.run(sink);
  const finished = result.then(
    async () => {
      const tail = opts.outcome ? await opts.outcome(true).catch(() => '') : '';
      events.publish(app, { type: 'done', action, ok: true, message: `Done.${tail ? ` ${tail}` : ''}` });
      return true;
    },
    async (err: unknown) => {
      const error = RackError.from(err);
      if (answering && REFUSALS.has(error.code)) return false;
      const tail = opts.outcome ? await opts.outcome(false).catch(() => '') : '';
      events.publish(app, { type: 'done', action, ok: false, message: `Failed: ${sentence(error.message)}${tail ? ` ${tail}` : ''}` });
      return true;
    },
  );
  void finished.then((acted) => {
    if (acted) for (const what of opts.touches) events.publish(app, { type: 'changed', what });
  });
  let timer: NodeJS.Timeout | undefined;
  const early = new Promise<void>(
    (resolve) =>
      (timer = setTimeout(() => {
        answering = false; // at once, so a refusal coming after this is told as the action's outcome
        resolve();
      }, EARLY_MS)),
  );
  try {
    await Promise.race([result, early]);
  } catch (err) {
    const error = RackError.from(err);
    if (REFUSALS.has(error.code)) throw error;
  } finally {
    answering = false;
    clearTimeout(timer);
  }
  return { action, result };
}

/** A message ended as a sentence, so the one after it does not run on from it. */
export function sentence(message: string): string {
  const m = message.trimEnd();
  return /[.!?:)]$/.test(m) ? m : `${m}.`;
}
