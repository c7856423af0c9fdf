import test from 'ava';
import { SILENT, SupervisorHarness } from './support/supervisor-harness.js';

// The rollout's failure paths over the fake runtime (test/support/fake-runtime.ts): each failure
// is injected, and what the router and the store end up with is checked. Milliseconds, no engine.

test('a rollback points the router back at the old processes before removing the new ones, even when a removal throws', async (t) => {
  const h = await SupervisorHarness.create();
  try {
    await h.deploy('app');
    const old = h.router.upstreams('app');
    t.is(old.length, 1);
    const v2 = await h.release('app', { V: '2' });
    // Every removal throws: the rollback must still point the router back.
    h.runtime.processes.failures.remove = true;
    const err = await t.throwsAsync(
      h.supervisor.rollout({
        release: v2,
        out: SILENT,
        // Fails after the switch: the router already points at v2's process.
        record: async () => {
          throw new Error('the store is full');
        },
      }),
    );
    t.regex(err?.message ?? '', /the store is full/);
    t.deepEqual(h.router.upstreams('app'), old, 'the router serves the release the store still records as current');
    const [newId] = h.runtime.processes.started.slice(-1).map((p) => p.id);
    const back = h.journal.indexOf(`route app [${old.join(' ')}]`, h.journal.indexOf(`start web ${newId}`));
    const removal = h.journal.indexOf(`remove ${newId}`);
    t.true(back !== -1 && removal !== -1 && back < removal, `pointed back, then removed: ${h.journal.join(', ')}`);
    // The one that would not go is left for the next start's clean-up; the old one still serves.
    h.runtime.processes.failures.remove = undefined;
    t.is((await h.running('app')).length, 2);
  } finally {
    await h.close();
  }
});

test('a rollback removes every new process it can, each in its own try', async (t) => {
  const h = await SupervisorHarness.create();
  try {
    await h.deploy('app');
    const old = h.router.upstreams('app');
    const v2 = await h.release('app', { V: '2' });
    const before = h.runtime.processes.started.length;
    let first: string | undefined;
    const err = await t.throwsAsync(
      h.supervisor.rollout({
        release: v2,
        out: SILENT,
        formation: { web: 3 },
        record: async () => {
          first = h.runtime.processes.started[before]!.id;
          h.runtime.processes.failures.remove = new Set([first]);
          throw new Error('record failed');
        },
      }),
    );
    t.regex(err?.message ?? '', /record failed/);
    t.deepEqual(h.router.upstreams('app'), old);
    const left = (await h.runtime.processes.list('app')).map((p) => p.id);
    t.deepEqual(left.sort(), [h.runtime.processes.started[0]!.id, first!].sort(), 'the two others were removed');
  } finally {
    await h.close();
  }
});

test('a start that fails leaves the router and the old processes as they were', async (t) => {
  const h = await SupervisorHarness.create();
  try {
    await h.deploy('app');
    const old = h.router.upstreams('app');
    const running = await h.running('app');
    h.runtime.processes.failures.start = new Error('no such image');
    const err = await t.throwsAsync(h.deploy('app', { V: '2' }));
    t.is((err as { code?: string }).code, 'deploy_failed');
    t.regex(err?.message ?? '', /no such image/);
    t.deepEqual(h.router.upstreams('app'), old);
    t.deepEqual(await h.running('app'), running);
    t.is((await h.store.requireApp('app')).currentRelease, 1);
  } finally {
    await h.close();
  }
});

test('health that never comes fails the release: the router never moves and the new process is removed', async (t) => {
  const h = await SupervisorHarness.create();
  try {
    await h.deploy('app');
    const old = h.router.upstreams('app');
    const routed = h.router.history.get('app')!.length;
    const running = await h.running('app');
    h.runtime.processes.failures.unhealthy = true;
    const err = await t.throwsAsync(h.deploy('app', { V: '2' }));
    t.regex(err?.message ?? '', /v2 failed its health check: web: no passing answer on \/ after 3 attempts: GET \/ answered 503/);
    t.is(h.router.history.get('app')!.length, routed, 'no route change at all');
    t.deepEqual(h.router.upstreams('app'), old);
    t.deepEqual(await h.running('app'), running);
    const app = await h.store.requireApp('app');
    t.is(app.currentRelease, 1);
    t.deepEqual(app.serving, running);
  } finally {
    await h.close();
  }
});

test('a failed release phase starts nothing and moves nothing', async (t) => {
  const h = await SupervisorHarness.create();
  try {
    await h.deploy('app');
    const started = h.runtime.processes.started.length;
    h.runtime.tasks.exitCode = 3;
    const release = await h.release('app', { V: '2' });
    const withPhase = { ...release, processTypes: { ...release.processTypes, release: 'migrate' } };
    const err = await t.throwsAsync(h.supervisor.rollout({ release: withPhase, out: SILENT, releasePhase: true, record: async () => t.fail() }));
    t.regex(err?.message ?? '', /the release command failed \(exit status 3\)/);
    t.is(h.runtime.processes.started.length, started);
    t.is(h.runtime.tasks.runs.at(-1)?.role, 'release');
  } finally {
    await h.close();
  }
});
