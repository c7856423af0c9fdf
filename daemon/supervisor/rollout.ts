/**
 * A rollout as an explicit state machine: release phase → start → wait healthy → switch → drain.
 * The table is what drives a rollout (runRollout walks it, one step per state), so a step can only
 * happen where the table allows it. Any failure before the drain goes to `rolling_back`, which
 * points the router back at the old processes first (removing what it still routes to would
 * answer requests with 502s) and then removes the new ones. Once the switch is recorded
 * nothing can fail the release: draining is best effort, and happens in the background.
 */
export type RolloutState =
  | 'release_phase'
  | 'starting'
  | 'waiting_healthy'
  | 'switching'
  | 'draining'
  | 'done'
  | 'rolling_back'
  | 'failed';

export type RolloutEvent = 'released' | 'started' | 'healthy' | 'switched' | 'drained' | 'failure' | 'cleaned_up';

const TABLE: Record<RolloutState, Partial<Record<RolloutEvent, RolloutState>>> = {
  release_phase: { released: 'starting', failure: 'rolling_back' },
  starting: { started: 'waiting_healthy', failure: 'rolling_back' },
  waiting_healthy: { healthy: 'switching', failure: 'rolling_back' },
  switching: { switched: 'draining', failure: 'rolling_back' },
  draining: { drained: 'done' },
  done: {},
  rolling_back: { cleaned_up: 'failed' },
  failed: {},
};

/** The phases whose time a user sees, by the state that spends it. */
export const PHASE_OF: Partial<Record<RolloutState, string>> = {
  release_phase: 'release',
  starting: 'start',
  waiting_healthy: 'healthy',
  switching: 'switch',
  // draining only hands the old processes to the drainer (drainer.ts): no time a user waits.
};

export function transition(state: RolloutState, event: RolloutEvent): RolloutState {
  const next = TABLE[state][event];
  if (next === undefined) throw new Error(`rollout: event "${event}" is not valid in state "${state}"`);
  return next;
}

export function isFinal(state: RolloutState): boolean {
  return Object.keys(TABLE[state]).length === 0;
}

/** What each non-final state does; it resolves to the event that moves the rollout on. */
export type RolloutSteps = Record<Exclude<RolloutState, 'done' | 'failed'>, () => Promise<RolloutEvent>>;

/**
 * Walks the table from `release_phase` until a final state. A step that throws is the `failure`
 * event; a failure in `draining` (best effort) or `rolling_back` is reported to `onLateError` and
 * the walk goes on as if it had succeeded. Resolves on `done`, rejects with the first failure.
 */
export async function runRollout(
  steps: RolloutSteps,
  hooks: { onState?: (state: RolloutState, ms: number) => void; onLateError: (state: RolloutState, err: unknown) => void },
): Promise<void> {
  let state: RolloutState = 'release_phase';
  let failure: unknown;
  while (!isFinal(state)) {
    const step = steps[state as keyof RolloutSteps];
    const began = Date.now();
    let event: RolloutEvent;
    try {
      event = await step();
    } catch (err) {
      if (state === 'draining') event = 'drained';
      else if (state === 'rolling_back') event = 'cleaned_up';
      else {
        failure = err;
        event = 'failure';
      }
      if (event !== 'failure') hooks.onLateError(state, err);
    }
    hooks.onState?.(state, Date.now() - began);
    state = transition(state, event);
  }
  if (state === 'failed') throw failure;
}
