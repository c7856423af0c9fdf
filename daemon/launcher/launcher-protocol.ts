/**
 * What rackd and its launcher (`bin/rackd`) say to each other over the IPC channel the launcher
 * opens to every rackd it starts. rackd may be of another version than the launcher: this is the
 * one contract between them, so messages only ever gain optional fields.
 */

/** Set by the launcher in each rackd's environment: rackd may ask it for a switch. */
export const LAUNCHED_ENV = 'RACK_LAUNCHED';

/** rackd → launcher. */
export type ToLauncher =
  /** Started and serving (after its store, router and adoption): the launcher may count on it. */
  | { type: 'ready'; pid: number; startMs: number }
  /**
   * rackd has stopped its components (store closed, listeners closed, apps and router left
   * running) and asks the launcher to start the rackd installed in `dir` in its place.
   */
  | { type: 'switch'; dir: string };

/** launcher → the rackd that asked for a switch. */
export type SwitchAnswer =
  | { type: 'switched'; ok: true; pid: number; startMs: number }
  | { type: 'switched'; ok: false; error: string };

export function isToLauncher(msg: unknown): msg is ToLauncher {
  if (typeof msg !== 'object' || msg === null) return false;
  const m = msg as Record<string, unknown>;
  if (m['type'] === 'ready') return typeof m['pid'] === 'number' && typeof m['startMs'] === 'number';
  if (m['type'] === 'switch') return typeof m['dir'] === 'string';
  return false;
}

export function isSwitchAnswer(msg: unknown): msg is SwitchAnswer {
  if (typeof msg !== 'object' || msg === null) return false;
  const m = msg as Record<string, unknown>;
  return m['type'] === 'switched' && typeof m['ok'] === 'boolean';
}
