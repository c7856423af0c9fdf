import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogHub } from '../daemon/logs/log-hub.js';
import type { ProcessInfo } from '../daemon/runtime/runtime.js';
import { Store } from '../daemon/store/store.js';
import { RouterPublisher } from '../daemon/supervisor/router-publisher.js';
import { FakeRouter } from './support/fake-router.js';

// The router publisher alone: which web processes the router is told, over a fake router.

function web(id: string, port: number, running = true): ProcessInfo {
  return {
    id,
    name: `rack.app.v1.web.${id}`,
    app: 'app',
    release: 1,
    type: 'web',
    dyno: 'web.1',
    running,
    restarting: !running,
    restarts: 0,
    oomKilled: false,
    exitCode: 0,
    upstream: { host: '127.0.0.1', port },
    startedAt: '',
    limits: { memoryMb: 512, cpu: 1, pids: 256 },
  };
}

async function publisher(): Promise<{ pub: RouterPublisher; router: FakeRouter; done: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'rack-publisher-'));
  const store = new Store(join(dir, 'db'), join(dir, 'builds'));
  await store.start();
  await store.createApp('app');
  const router = new FakeRouter();
  const pub = new RouterPublisher('localhost', store, router, new LogHub());
  return {
    pub,
    router,
    done: async () => {
      await store.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

test('a dead web process leaves the router and comes back; a listing begun before a switch is ignored', async (t) => {
  const { pub, router, done } = await publisher();
  try {
    await pub.switchTo('app', [{ id: 'a', upstream: { host: '127.0.0.1', port: 1 } }, { id: 'b', upstream: { host: '127.0.0.1', port: 2 } }]);
    t.deepEqual(router.upstreams('app'), ['127.0.0.1:1', '127.0.0.1:2']);
    await pub.setDown('app', 'a', true);
    t.deepEqual(router.upstreams('app'), ['127.0.0.1:2']);
    await pub.setDown('app', 'zzz', true); // not a switched-to web process: no change
    t.is(router.history.get('app')!.length, 2);
    await pub.setDown('app', 'a', false);
    t.deepEqual(router.upstreams('app'), ['127.0.0.1:1', '127.0.0.1:2']);

    // A sweep lists what runs, then a rollout switches, then the sweep's (stale) listing arrives.
    const epoch = pub.epoch('app');
    const listed = [web('a', 1), web('b', 2)];
    await pub.switchTo('app', [{ id: 'c', upstream: { host: '127.0.0.1', port: 3 } }]);
    await pub.observe('app', listed, epoch);
    t.deepEqual(router.upstreams('app'), ['127.0.0.1:3'], 'the new process was not taken for missing');
    // A fresh listing acts: c restarting leaves the router; running again, it returns.
    await pub.observe('app', [web('c', 3, false)], pub.epoch('app'));
    t.deepEqual(router.upstreams('app'), []);
    await pub.observe('app', [web('c', 3)], pub.epoch('app'));
    t.deepEqual(router.upstreams('app'), ['127.0.0.1:3']);
  } finally {
    await done();
  }
});

test('a router change that failed is made again by the next listing', async (t) => {
  const { pub, router, done } = await publisher();
  try {
    await pub.switchTo('app', [{ id: 'a', upstream: { host: '127.0.0.1', port: 1 } }]);
    router.failSetApp = new Error('router gone');
    await t.throwsAsync(pub.setDown('app', 'a', true), { message: 'router gone' });
    t.deepEqual(router.upstreams('app'), ['127.0.0.1:1']);
    router.failSetApp = undefined;
    await pub.observe('app', [web('a', 1, false)], pub.epoch('app'));
    t.deepEqual(router.upstreams('app'), []);
  } finally {
    await done();
  }
});
