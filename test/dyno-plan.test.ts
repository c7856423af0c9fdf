import test from 'ava';
import { parseDyno, planDynos, type LiveDyno } from '../daemon/supervisor/dyno-plan.js';

// Which dynos a rollout starts, stops and keeps: the decision alone (supervisor.ts acts on it).

const live = (...dynos: string[]): LiveDyno[] => dynos.map((d) => ({ id: `id-${d}`, type: d.split('.')[0]!, dyno: d }));
const names = (plan: ReturnType<typeof planDynos>) => ({
  start: plan.start.map((s) => `${s.type}.${s.index}`),
  stop: plan.stop.map((p) => p.dyno),
  keep: plan.keep.map((p) => p.dyno),
});

test('a release replaces every dyno, each by one of the same number', (t) => {
  t.deepEqual(names(planDynos({ formation: { web: 2, worker: 1 }, live: live('web.1', 'web.2', 'worker.1') })), {
    start: ['web.1', 'web.2', 'worker.1'],
    stop: ['web.1', 'web.2', 'worker.1'],
    keep: [],
  });
});

test('a scale of one type leaves the other types alone', (t) => {
  t.deepEqual(names(planDynos({ formation: { web: 1, worker: 1 }, live: live('web.1'), changedOnly: true })), { start: ['worker.1'], stop: [], keep: ['web.1'] });
});

test('a scale up takes the lowest free numbers; a scale down gives up the highest', (t) => {
  t.deepEqual(names(planDynos({ formation: { web: 3 }, live: live('web.1', 'web.3'), changedOnly: true })), { start: ['web.2'], stop: [], keep: ['web.1', 'web.3'] });
  t.deepEqual(names(planDynos({ formation: { web: 1 }, live: live('web.1', 'web.2', 'web.3'), changedOnly: true })), { start: [], stop: ['web.2', 'web.3'], keep: ['web.1'] });
});

test('a type gone from the formation stops; a second process of one number is stopped', (t) => {
  t.deepEqual(names(planDynos({ formation: { web: 1 }, live: live('web.1', 'web.1', 'clock.1'), changedOnly: true })), { start: [], stop: ['web.1', 'clock.1'], keep: ['web.1'] });
});

test('a restart of one dyno replaces it alone; of a type, that type alone', (t) => {
  t.deepEqual(names(planDynos({ formation: { web: 2, worker: 1 }, live: live('web.1', 'web.2', 'worker.1'), only: ['web.2'] })), {
    start: ['web.2'],
    stop: ['web.2'],
    keep: ['web.1', 'worker.1'],
  });
  t.deepEqual(names(planDynos({ formation: { web: 2, worker: 1 }, live: live('web.1', 'web.2', 'worker.1'), only: ['worker'] })), {
    start: ['worker.1'],
    stop: ['worker.1'],
    keep: ['web.1', 'web.2'],
  });
});

test('stopped dynos are not started, by a stop, a restart or the scale that kept them', (t) => {
  const stopped = ['web.2'];
  t.deepEqual(names(planDynos({ formation: { web: 3 }, stopped, live: live('web.1', 'web.2', 'web.3'), changedOnly: true, only: ['web.2'] })), {
    start: [],
    stop: ['web.2'],
    keep: ['web.1', 'web.3'],
  });
  t.deepEqual(names(planDynos({ formation: { web: 3 }, stopped, live: live('web.1', 'web.3') })), { start: ['web.1', 'web.3'], stop: ['web.1', 'web.3'], keep: [] });
});

test('on a Swarm a type with any change is replaced whole; one without is left alone', (t) => {
  t.deepEqual(names(planDynos({ formation: { web: 1, worker: 2 }, live: live('web.1', 'worker.1'), changedOnly: true, wholeTypes: true })), {
    start: ['worker.1', 'worker.2'],
    stop: ['worker.1'],
    keep: ['web.1'],
  });
});

test('dyno names are TYPE.N with N from 1', (t) => {
  t.deepEqual(parseDyno('web.12'), { type: 'web', index: 12 });
  t.is(parseDyno('web.0'), undefined);
  t.is(parseDyno('web'), undefined);
  t.is(parseDyno('web.1.2'), undefined);
});
