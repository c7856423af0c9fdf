import { isSwitchAnswer, LAUNCHED_ENV, type SwitchAnswer, type ToLauncher } from '../launcher/launcher-protocol.js';
import { RackError } from '../rack-error.js';

/** Whether this rackd was started by `bin/rackd`, which can start another version in its place. */
export function launched(): boolean {
  return process.env[LAUNCHED_ENV] === '1' && typeof process.send === 'function' && process.connected;
}

function send(msg: ToLauncher): void {
  process.send?.(msg);
}

/** Tells the launcher this rackd serves (ends a switch to it). */
export function tellReady(startMs: number): void {
  if (launched()) send({ type: 'ready', pid: process.pid, startMs });
}

/**
 * Asks the launcher to start the rackd installed in `dir` in this one's place, and waits for how it
 * went. Called once this rackd has let go of its store and ports.
 */
export function askSwitch(dir: string): Promise<SwitchAnswer> {
  if (!launched()) throw new RackError('not_launched', 'rackd was not started by bin/rackd, which alone can start another version in its place');
  return new Promise((resolve) => {
    const onMessage = (msg: unknown) => {
      if (!isSwitchAnswer(msg)) return;
      process.off('message', onMessage);
      process.off('disconnect', onGone);
      resolve(msg);
    };
    const onGone = () => {
      process.off('message', onMessage);
      resolve({ type: 'switched', ok: false, error: 'the launcher went away' });
    };
    process.on('message', onMessage);
    process.once('disconnect', onGone);
    send({ type: 'switch', dir });
  });
}
