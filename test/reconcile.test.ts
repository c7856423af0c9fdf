import test from 'ava';
import type { ProcessInfo } from '../daemon/runtime/runtime.js';
import { nextReplacement, planReconcile, STABLE_MS } from '../daemon/supervisor/reconcile-plan.js';
import { SupervisorHarness, until } from './support/supervisor-harness.js';

// Processes stopped, removed or lost outside rack: the decision alone (pure), then the supervisor
// acting on it over the fake runtime.

function proc(id: string, type: string, state: 'running' | 'restarting' | 'exited'): ProcessInfo {
  return {
    id,
    name: `rack.app.v1.${type}.${id}`,
    app: 'app',
    release: 1,
    type,
    dyno: `${type}.1`,
    running: state === 'running',
    restarting: state === 'restarting',
    restarts: 0,
    oomKilled: false,
    exitCode: state === 'exited' ? 137 : 0,
    upstream: null,
    startedAt: '',
    limits: { memoryMb: 512, cpu: 1, pids: 256 },
  };
}

test('plan: running and restarting serving processes are kept; stopped or absent ones are gone and replaced by type', (t) => {
  const found = [proc('a', 'web', 'running'), proc('b', 'web', 'exited'), proc('c', 'worker', 'restarting'), proc('x', 'web', 'running')];
  const plan = planReconcile(['a', 'b', 'c', 'd'], { web: 2, worker: 2 }, found);
  t.deepEqual(plan.live.map((p) => p.id), ['a', 'c']);
  t.deepEqual(plan.gone, ['b', 'd']);
  // d was removed: nothing says its type, so the formation does (one web short, one worker short).
  t.deepEqual(plan.missing, { web: 1, worker: 1 });
});

test('plan: nothing gone, nothing to start, even with a formation the serving set never matched', (t) => {
  const plan = planReconcile(['a'], { web: 3 }, [proc('a', 'web', 'running')]);
  t.deepEqual(plan.gone, []);
  t.deepEqual(plan.missing, {});
  // Never more started than what is gone.
  t.deepEqual(planReconcile(['a', 'b'], { web: 5 }, [proc('a', 'web', 'running')]).missing, { web: 1 });
  // Not in the serving record: not this decision's (a draining or never switched-to process).
  t.deepEqual(planReconcile(['a'], { web: 1 }, [proc('a', 'web', 'running'), proc('z', 'web', 'exited')]).gone, []);
});

test('backoff: the first replacement at once; again within a minute waits 5 s, 10 s, 20 s... up to 5 minutes', (t) => {
  const now = 1_000_000;
  t.deepEqual(nextReplacement(undefined, now), { at: now, streak: 0 });
  t.deepEqual(nextReplacement({ endedAt: now - STABLE_MS, streak: 4 }, now), { at: now, streak: 0 }, 'a minute up resets it');
  t.deepEqual(nextReplacement({ endedAt: now - 1000, streak: 0 }, now), { at: now + 4000, streak: 1 });
  t.deepEqual(nextReplacement({ endedAt: now, streak: 1 }, now), { at: now + 10_000, streak: 2 });
  t.deepEqual(nextReplacement({ endedAt: now, streak: 2 }, now), { at: now + 20_000, streak: 3 });
  t.deepEqual(nextReplacement({ endedAt: now, streak: 20 }, now), { at: now + 300_000, streak: 21 });
});

test('a killed web process leaves the router at once, and a new one is started, checked and switched to', async (t) => {
  const h = await SupervisorHarness.create();
  try {
    await h.deploy('app', {}, { web: 2 });
    const [a, b] = (await h.store.requireApp('app')).serving!;
    const before = h.router.upstreams('app');
    t.is(before.length, 2);
    await h.runtime.processes.kill(a!);
    await until(async () => (await h.store.requireApp('app')).serving!.length === 2 && !(await h.store.requireApp('app')).serving!.includes(a!), 'a replacement recorded');
    const serving = (await h.store.requireApp('app')).serving!;
    t.true(serving.includes(b!), 'the live one is kept');
    const fresh = serving.find((id) => id !== b)!;
    const freshInfo = await h.runtime.processes.inspect(fresh);
    t.is(freshInfo.release, 1);
    t.is(freshInfo.type, 'web');
    const key = (p: ProcessInfo) => `${p.upstream!.host}:${p.upstream!.port}`;
    const live = key(await h.runtime.processes.inspect(b!));
    await until(() => h.router.upstreams('app').length === 2, 'the router points at both');
    t.deepEqual(h.router.upstreams('app').sort(), [live, key(freshInfo)].sort());
    // The router went from both to the live one alone before the new one joined.
    const history = h.router.history.get('app')!;
    const dropped = history.findIndex((set) => set.length === 1 && set[0] === live);
    const joined = history.findIndex((set) => set.length === 2 && set.includes(key(freshInfo)));
    t.true(dropped !== -1 && dropped < joined, JSON.stringify(history));
    t.is(h.runtime.processes.spec(fresh)?.env['DYNO'], h.runtime.processes.spec(a!)?.env['DYNO'], 'the new one takes the number of the one it replaces');
    await t.throwsAsync(h.runtime.processes.inspect(a!), undefined, 'the dead container is removed');
    t.true(h.logLines('app').some((l) => /Process web\.\w+ is gone/.test(l)));
  } finally {
    await h.close();
  }
});

test('a removed process is replaced too', async (t) => {
  const h = await SupervisorHarness.create();
  try {
    await h.deploy('app');
    const [a] = (await h.store.requireApp('app')).serving!;
    await h.runtime.processes.destroy(a!);
    await until(async () => (await h.running('app')).length === 1 && h.router.upstreams('app').length === 1, 'a new process serves');
    const [fresh] = await h.running('app');
    t.not(fresh, a);
    t.deepEqual((await h.store.requireApp('app')).serving, [fresh]);
  } finally {
    await h.close();
  }
});

test('a crash the restart policy undoes is not replaced: the process leaves the router and comes back at once', async (t) => {
  const h = await SupervisorHarness.create();
  try {
    await h.deploy('app');
    const [a] = (await h.store.requireApp('app')).serving!;
    const upstream = h.router.upstreams('app');
    await h.runtime.processes.crash(a!);
    await until(() => h.router.upstreams('app').length === 0, 'dropped from the router');
    await h.runtime.processes.restart(a!);
    await until(() => h.router.upstreams('app').length === 1, 'back in the router');
    t.deepEqual(h.router.upstreams('app'), upstream);
    await h.supervisor.sweep(); // still nothing to replace
    t.is(h.runtime.processes.started.length, 1);
    t.deepEqual((await h.store.requireApp('app')).serving, [a]);
  } finally {
    await h.close();
  }
});

test('a replacement waits for a rollout under way, and looks again after it', async (t) => {
  const h = await SupervisorHarness.create();
  try {
    await h.deploy('app');
    const [a] = (await h.store.requireApp('app')).serving!;
    let release!: () => void;
    const held = h.lock.run('app', () => new Promise<void>((r) => (release = r)));
    await h.runtime.processes.kill(a!);
    await until(() => h.router.upstreams('app').length === 0, 'dropped from the router');
    await h.supervisor.sweep();
    t.is(h.runtime.processes.started.length, 1, 'nothing started while the app is locked');
    release();
    await held;
    await until(async () => (await h.running('app')).length === 1, 'replaced once the lock is free');
    t.is(h.runtime.processes.started.length, 2);
  } finally {
    await h.close();
  }
});

test('a replacement that fails its check backs off, and says so in the log and in ps', async (t) => {
  const h = await SupervisorHarness.create();
  try {
    await h.deploy('app');
    const [a] = (await h.store.requireApp('app')).serving!;
    h.runtime.processes.failures.unhealthy = true;
    await h.runtime.processes.kill(a!);
    await until(() => h.logLines('app').some((l) => /Could not replace the gone processes: web failed its health check/.test(l)), 'the failure told');
    await until(() => h.supervisor.replacing('app').some((r) => /^crashed \(restarting in [1-5] s\)$/.test(r.state)), 'ps shows the backoff');
    const [row] = h.supervisor.replacing('app');
    t.is(row!.id, a!);
    t.is(row!.type, 'web');
    t.true(h.logLines('app').some((l) => /Restarting gone processes in [1-5] s/.test(l)));
    t.is((await h.runtime.processes.list('app')).length, 1, 'the failed replacement was removed');
    h.runtime.processes.failures.unhealthy = false;
    await until(async () => h.supervisor.replacing('app').length === 0, 'replaced after the backoff');
    t.is((await h.running('app')).length, 1);
    t.notDeepEqual((await h.store.requireApp('app')).serving, [a!]);
    t.is(h.router.upstreams('app').length, 1);
  } finally {
    await h.close();
  }
});

test('a replaced process whose removal failed (the engine was bringing it back) is removed by a later sweep', async (t) => {
  const h = await SupervisorHarness.create();
  try {
    await h.deploy('app');
    const [a] = (await h.store.requireApp('app')).serving!;
    h.runtime.processes.failures.remove = new Set([a!]);
    await h.runtime.processes.kill(a!);
    await until(async () => !(await h.store.requireApp('app')).serving!.includes(a!), 'a replacement recorded');
    t.true((await h.runtime.processes.list('app')).some((p) => p.id === a), 'the first removal failed');
    h.runtime.processes.failures.remove = undefined;
    await h.supervisor.sweep();
    t.deepEqual((await h.runtime.processes.list('app')).map((p) => p.id), (await h.store.requireApp('app')).serving);
  } finally {
    await h.close();
  }
});
