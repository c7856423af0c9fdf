import type { ProcessInfo } from '../runtime/runtime.js';

/**
 * What to do about an app whose recorded serving processes are not all there: the decision alone,
 * pure, so its cases are tested without a runtime (reconciler.ts acts on it).
 */
export interface ReconcilePlan {
  /** Serving processes that run, or that the runtime is bringing back itself (Docker's restart policy): kept. */
  live: ProcessInfo[];
  /** Recorded as serving but gone for good: removed, or stopped and not coming back (`docker kill`, `docker stop`). */
  gone: string[];
  /** New processes to start, by type, to get back to the formation. */
  missing: Record<string, number>;
}

/**
 * Compares the processes recorded as serving with what the runtime lists. A gone process's type
 * may be unknown (removed: nothing lists it), so what to start is the formation less what lives,
 * and never more than what is gone: a formation the serving set never matched is not this
 * decision's to fix.
 */
export function planReconcile(serving: readonly string[], formation: Readonly<Record<string, number>>, found: readonly ProcessInfo[]): ReconcilePlan {
  const byId = new Map(found.map((p) => [p.id, p]));
  const live: ProcessInfo[] = [];
  const gone: string[] = [];
  for (const id of serving) {
    const p = byId.get(id);
    if (p && (p.running || p.restarting)) live.push(p);
    else gone.push(id);
  }
  const missing: Record<string, number> = {};
  let budget = gone.length;
  for (const [type, count] of Object.entries(formation)) {
    const short = Math.min(budget, Math.max(0, count - live.filter((p) => p.type === type).length));
    if (short > 0) missing[type] = short;
    budget -= short;
  }
  return { live, gone, missing };
}

/** A replacement that comes within this long of the app's last one continues a crash loop. */
export const STABLE_MS = 60_000;
const FIRST_DELAY_MS = 5_000;
const MAX_DELAY_MS = 5 * 60_000;

/** The app's last replacement attempt: when it ended, and how many came in a row before it. */
export interface ReplacementHistory {
  endedAt: number;
  streak: number;
}

/**
 * When the next replacement may start. The first comes at once; one needed again within a minute
 * of the last (a replacement that failed its check, or a process that keeps being killed) waits
 * 5 s, 10 s, 20 s... up to 5 minutes after the last ended, as Heroku cools a crashing dyno off.
 */
export function nextReplacement(last: ReplacementHistory | undefined, now: number): { at: number; streak: number } {
  if (last === undefined || now - last.endedAt >= STABLE_MS) return { at: now, streak: 0 };
  const streak = last.streak + 1;
  return { at: last.endedAt + Math.min(FIRST_DELAY_MS * 2 ** (streak - 1), MAX_DELAY_MS), streak };
}
