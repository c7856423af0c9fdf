/**
 * A rollout as an explicit state machine: start → wait healthy → switch → drain.
 * Any failure before the switch goes to `rolling_back`, which removes the new processes and leaves
 * the old release serving. After the switch nothing can fail the release: draining is best effort.
 */
export type RolloutState = 'starting' | 'waiting_healthy' | 'switching' | 'draining' | 'done' | 'rolling_back' | 'failed';

export type RolloutEvent = 'started' | 'healthy' | 'switched' | 'drained' | 'failure' | 'cleaned_up';

const TABLE: Record<RolloutState, Partial<Record<RolloutEvent, RolloutState>>> = {
  starting: { started: 'waiting_healthy', failure: 'rolling_back' },
  waiting_healthy: { healthy: 'switching', failure: 'rolling_back' },
  switching: { switched: 'draining', failure: 'rolling_back' },
  draining: { drained: 'done' },
  done: {},
  rolling_back: { cleaned_up: 'failed' },
  failed: {},
};

export function transition(state: RolloutState, event: RolloutEvent): RolloutState {
  const next = TABLE[state][event];
  if (next === undefined) throw new Error(`rollout: event "${event}" is not valid in state "${state}"`);
  return next;
}
