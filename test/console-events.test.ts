import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsoleEvents, type NumberedEvent } from '../daemon/console/console-events.js';
import { LogHub } from '../daemon/logs/log-hub.js';
import { Store } from '../daemon/store/store.js';

// The console's event channels alone, over a real store: what a page whose stream opens late, or
// is cut and opened again, is given.

async function channels(): Promise<{ events: ConsoleEvents; done: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'rack-console-events-'));
  const store = new Store(join(dir, 'db'), join(dir, 'builds'));
  await store.start();
  await store.createApp('app');
  const events = new ConsoleEvents(store, new LogHub());
  return {
    events,
    done: async () => {
      events.stop();
      await store.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const line = (text: string) => ({ type: 'line' as const, action: 'a1', text });
const texts = (got: NumberedEvent[]) => got.map((e) => (e.event.type === 'line' ? e.event.text : e.event.type));

test('an action started from a page before its stream opened is replayed to the stream', async (t) => {
  const { events, done } = await channels();
  try {
    const from = events.startId('app'); // the page is rendered
    events.publish('app', line('-----> Scaling'));
    events.publish('app', { type: 'done', action: 'a1', ok: true, message: 'Done.' });
    const got: NumberedEvent[] = [];
    const sub = events.subscribe('app', from, (e) => got.push(e));
    t.false(sub.reset);
    t.deepEqual(texts(got), ['-----> Scaling', 'done']);
    sub.stop();
  } finally {
    await done();
  }
});

test('a stream cut while nobody else listens is given what it missed when it opens again', async (t) => {
  const { events, done } = await channels();
  try {
    const got: NumberedEvent[] = [];
    const first = events.subscribe('app', events.startId('app'), (e) => got.push(e));
    events.publish('app', line('one'));
    first.stop(); // the last listener goes: the channel and its ring are kept for a while
    events.publish('app', line('two'));
    const again = events.subscribe('app', got.at(-1)!.id, (e) => got.push(e));
    t.false(again.reset);
    t.deepEqual(texts(got), ['one', 'two']);
    again.stop();
  } finally {
    await done();
  }
});

test('an ID of another boot, or one older than the ring holds, is a reset; a fresh stream is given nothing old', async (t) => {
  const { events, done } = await channels();
  try {
    const from = events.startId('app');
    for (let i = 0; i < 501; i++) events.publish('app', line(String(i)));
    const got: NumberedEvent[] = [];
    const old = events.subscribe('app', from, (e) => got.push(e));
    t.true(old.reset);
    const other = events.subscribe('app', 'deadbeef.1', (e) => got.push(e));
    t.true(other.reset);
    const fresh = events.subscribe('app', undefined, (e) => got.push(e));
    t.false(fresh.reset);
    t.deepEqual(got, []);
    for (const s of [old, other, fresh]) s.stop();
  } finally {
    await done();
  }
});
