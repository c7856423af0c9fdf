/**
 * When a process is crash-looping: Docker restarts a process that exits (its restart policy, with
 * a doubling delay), so one process exiting `EXITS` times within `WINDOW_MS` is a loop. A process
 * stopped by a drain exits once and is removed, so it never counts. Told once per loop: a process
 * that keeps crashing is told again only after `QUIET_MS` since it was last told.
 */
export const CRASH_LOOP = { exits: 3, windowMs: 60_000, quietMs: 10 * 60_000 } as const;

export interface CrashHistory {
  /** Exit times inside the window, oldest first. */
  exits: number[];
  toldAt?: number;
}

/** Pure: the history after an exit at `now`, and whether this exit makes it a loop to tell. */
export function noteExit(history: CrashHistory | undefined, now: number, limits = CRASH_LOOP): { history: CrashHistory; tell: boolean } {
  const exits = [...(history?.exits ?? []).filter((t) => now - t < limits.windowMs), now];
  const looping = exits.length >= limits.exits;
  const quiet = history?.toldAt === undefined || now - history.toldAt >= limits.quietMs;
  const tell = looping && quiet;
  const toldAt = tell ? now : history?.toldAt;
  return { history: { exits: exits.slice(-limits.exits), ...(toldAt === undefined ? {} : { toldAt }) }, tell };
}
