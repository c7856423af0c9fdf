import test from 'ava';
import { startAction } from '../daemon/console/console-action.js';
import type { ConsoleEvent, ConsoleEvents } from '../daemon/console/console-events.js';
import { RackError } from '../daemon/rack-error.js';

// A console action alone: what its page is told, over a recorder of published events.

function recorder(): { events: ConsoleEvents; published: ConsoleEvent[] } {
  const published: ConsoleEvent[] = [];
  return { events: { publish: (_app: string, e: ConsoleEvent) => published.push(e) } as unknown as ConsoleEvents, published };
}

test('a refusal is the request’s answer: no outcome and no list fetched again (a panel being typed in stays)', async (t) => {
  const { events, published } = recorder();
  const err = await t.throwsAsync(
    startAction({ events, app: 'app', touches: ['domains'], run: async () => Promise.reject(new RackError('bad_argument', 'not a host')) }),
  );
  t.is(err?.message, 'not a host');
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(published, []);
});

test('a change that fails after the page was answered tells its outcome, then its lists are fetched again', async (t) => {
  const { events, published } = recorder();
  let fail!: () => void;
  const ran = new Promise<void>((_resolve, reject) => (fail = () => reject(new RackError('bad_argument', 'refused late'))));
  const { action, result } = await startAction({
    events,
    app: 'app',
    touches: ['domains'],
    run: async (sink) => {
      sink('-----> Working');
      await ran;
    },
  });
  fail();
  await t.throwsAsync(result);
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(published, [
    { type: 'line', action, text: '-----> Working' },
    { type: 'done', action, ok: false, message: 'Failed: refused late.' },
    { type: 'changed', what: 'domains' },
  ]);
});
