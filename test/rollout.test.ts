import test from 'ava';
import { formatLimits, limitsFor, parseLimitWords, confinement, DEFAULT_LIMITS } from '../daemon/runtime/isolation.js';
import { runRollout, type RolloutSteps, type RolloutState } from '../daemon/supervisor/rollout.js';

function steps(fail: Partial<Record<RolloutState, Error>>, seen: string[]): RolloutSteps {
  const step = (state: keyof RolloutSteps, event: Awaited<ReturnType<RolloutSteps[keyof RolloutSteps]>>) => async () => {
    seen.push(state);
    const err = fail[state];
    if (err) throw err;
    return event;
  };
  return {
    release_phase: step('release_phase', 'released'),
    starting: step('starting', 'started'),
    waiting_healthy: step('waiting_healthy', 'healthy'),
    switching: step('switching', 'switched'),
    draining: step('draining', 'drained'),
    rolling_back: step('rolling_back', 'cleaned_up'),
  };
}

test('a rollout walks the table: release phase, start, healthy, switch, drain', async (t) => {
  const seen: string[] = [];
  const timed: string[] = [];
  await runRollout(steps({}, seen), { onState: (s) => timed.push(s), onLateError: () => t.fail() });
  t.deepEqual(seen, ['release_phase', 'starting', 'waiting_healthy', 'switching', 'draining']);
  t.deepEqual(timed, seen);
});

test('a failure before the drain rolls back and rejects with the first error', async (t) => {
  for (const state of ['release_phase', 'starting', 'waiting_healthy', 'switching'] as const) {
    const seen: string[] = [];
    const err = await t.throwsAsync(runRollout(steps({ [state]: new Error(`boom in ${state}`) }, seen), { onLateError: () => t.fail() }));
    t.is(err?.message, `boom in ${state}`);
    t.is(seen.at(-1), 'rolling_back');
    t.false(seen.includes('draining'));
  }
});

test('a failed drain or clean-up is reported, not thrown: the switch already happened', async (t) => {
  const late: string[] = [];
  await runRollout(steps({ draining: new Error('stuck') }, []), { onLateError: (s) => late.push(s) });
  t.deepEqual(late, ['draining']);
  const seen: string[] = [];
  const err = await t.throwsAsync(
    runRollout(steps({ starting: new Error('no image'), rolling_back: new Error('docker gone') }, seen), { onLateError: (s) => late.push(s) }),
  );
  t.is(err?.message, 'no image');
  t.deepEqual(late, ['draining', 'rolling_back']);
});

test('limits: parsed, bounded, formatted, and turned into Docker settings', (t) => {
  t.deepEqual(parseLimitWords(['memory=1g', 'cpu=0.5', 'pids=128']), { memoryMb: 1024, cpu: 0.5, pids: 128 });
  t.deepEqual(parseLimitWords(['memory=300m']), { memoryMb: 300 });
  t.deepEqual(parseLimitWords(['cpu=shared']), { cpu: 0 });
  t.is(formatLimits(DEFAULT_LIMITS), 'memory=512m cpu=1 pids=256');
  t.is(formatLimits({ ...DEFAULT_LIMITS, cpu: 0 }), 'memory=512m cpu=shared pids=256');
  t.is(confinement({ ...DEFAULT_LIMITS, cpu: 0 }).NanoCpus, undefined);
  t.throws(() => parseLimitWords(['memory=1t']), { message: /memory=1t is out of range|expected/ });
  t.throws(() => parseLimitWords(['memory=8']), { message: /out of range/ });
  t.throws(() => parseLimitWords(['cpu=99']), { message: /out of range/ });
  t.throws(() => parseLimitWords(['pids=1']), { message: /out of range/ });
  t.throws(() => parseLimitWords(['swap=1g']), { message: /expected memory=SIZE/ });
  t.deepEqual(limitsFor('web', undefined), DEFAULT_LIMITS);
  t.deepEqual(limitsFor('constructor', {}), DEFAULT_LIMITS);
  t.deepEqual(limitsFor('web', { web: { memoryMb: 1024 } }), { ...DEFAULT_LIMITS, memoryMb: 1024 });
  t.is(formatLimits({ memoryMb: 1024, cpu: 1, pids: 256 }), 'memory=1g cpu=1 pids=256');
  const c = confinement({ memoryMb: 512, cpu: 0.5, pids: 64 });
  t.is(c.Memory, 512 * 1024 * 1024);
  t.is(c.MemorySwap, c.Memory);
  t.is(c.NanoCpus, 5e8);
  t.is(c.PidsLimit, 64);
  t.deepEqual(c.CapDrop, ['ALL']);
  t.deepEqual(c.SecurityOpt, ['no-new-privileges:true']);
});

test('app subnets: the first free /26 of the range, skipping every overlap', async (t) => {
  const { freeSlice, parseSubnetRange } = await import('../daemon/runtime/subnets.js');
  t.is(freeSlice('10.213.0.0/16', []), '10.213.0.0/26');
  t.is(freeSlice('10.213.0.0/16', ['10.213.0.0/26', '172.17.0.0/16']), '10.213.0.64/26');
  t.is(freeSlice('10.213.0.0/16', ['10.213.0.0/24']), '10.213.1.0/26');
  t.is(freeSlice('10.213.0.0/16', ['10.0.0.0/8']), undefined);
  t.is(freeSlice('10.213.0.0/25', ['10.213.0.0/26'], new Set(['10.213.0.64/26'])), undefined);
  t.is(parseSubnetRange('10.9.0.0/16'), '10.9.0.0/16');
  t.throws(() => parseSubnetRange('10.9.0.0/28'), { message: /RACK_APP_SUBNETS/ });
  t.throws(() => parseSubnetRange('fd00::/64'), { message: /RACK_APP_SUBNETS/ });
});
