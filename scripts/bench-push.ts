/**
 * Measures `git push` → the new release answering through the router, for a first push and for
 * redeploys of a small Node app, against a real rackd, git, ssh and Docker, on a host already
 * running other apps (20 unless `--others N`). Prints the medians and the median of each phase
 * rack itself timed.
 *   npm run build && node dist/scripts/bench-push.js [redeploys] [--others N]
 */
import { RackDaemon } from '../test/support/rack-daemon.js';
import { median, medianPhases, othersArg, positional, pushToAnswering, runOtherApps, secs, type PhaseFigures } from './bench-host.js';

const argv = process.argv.slice(2);
const redeploys = Number(positional(argv)[0] ?? 5);
const others = othersArg(argv);
const FIRST_GOAL_MS = 3_000;
const REDEPLOY_GOAL_MS = 2_000;
async function timePush(rack: RackDaemon, dir: string, app: string, marker: string): Promise<{ answering: number; phases: PhaseFigures }> {
  const r = await pushToAnswering(rack, dir, app, marker);
  return { answering: r.ms, phases: r.phases };
}

const verdict = (ms: number, goal: number) => `${(ms / goal).toFixed(2)} of the goal ${ms <= goal ? 'ok' : 'MISSED'}`;

const rack = await RackDaemon.create();
try {
  await runOtherApps(rack, others);
  const app = 'bench-push';
  const dir = await rack.appRepo('node-hello', app);
  const first = await timePush(rack, dir, app, 'first');
  const again: number[] = [];
  const phases: PhaseFigures[] = [];
  for (let i = 0; i < redeploys; i++) {
    const r = await timePush(rack, dir, app, `redeploy-${i}`);
    again.push(r.answering);
    phases.push(r.phases);
  }
  console.log(`${others} other apps running`);
  console.log(`first push → answering: ${secs(first.answering)} (goal ≤ ${secs(FIRST_GOAL_MS)}: ${verdict(first.answering, FIRST_GOAL_MS)})`);
  console.log(`  phases: ${medianPhases([first.phases])}`);
  const m = median(again);
  console.log(`redeploy → answering (n=${redeploys}): median ${secs(m)}, min ${secs(Math.min(...again))}, max ${secs(Math.max(...again))} (goal ≤ ${secs(REDEPLOY_GOAL_MS)}: ${verdict(m, REDEPLOY_GOAL_MS)})`);
  console.log(`  phases (median): ${medianPhases(phases)}`);
} finally {
  await rack.destroy();
}
