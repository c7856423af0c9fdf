import { randomBytes } from 'node:crypto';
import type { PushMarker } from '../store/records.js';

/**
 * `receiving`: git is reading the pack, the hook has not called in; `deploying`: the pre-receive
 * handler runs (build, release, rollout); `settled`: it has returned.
 */
export type PushStage = 'receiving' | 'deploying' | 'settled';

export interface PushSession {
  app: string;
  keyName: string;
  repo: string;
  /** Fires when the pusher goes away: a push nobody waits for must not go on to release. */
  interrupted: AbortSignal;
  stage: PushStage;
  /** When git-receive-pack started reading the push (for the receive phase's timing). */
  openedAt: number;
  /** Set just before a pushed release rolls out; checked against the branch once git is done. */
  released?: PushMarker;
  /** The error code the pushed release failed with after it was made (its health check, its release phase). */
  failed?: string;
  /** Settles when the pre-receive handler has returned (at once if it never ran). */
  handlerDone: Promise<void>;
  markHandlerDone: () => void;
}

/**
 * Pushes in progress, by a random token handed to git-receive-pack's environment. The hook shows
 * the token back over the control socket, so the daemon knows which app and key a hook speaks for
 * without trusting anything else the hook says.
 */
export class PushSessions {
  private readonly sessions = new Map<string, PushSession>();

  open(fields: Pick<PushSession, 'app' | 'keyName' | 'repo' | 'interrupted'>): { token: string; session: PushSession } {
    const token = randomBytes(24).toString('hex');
    let markHandlerDone = () => {};
    const handlerDone = new Promise<void>((resolve) => (markHandlerDone = resolve));
    const session: PushSession = { ...fields, stage: 'receiving', openedAt: Date.now(), handlerDone, markHandlerDone };
    this.sessions.set(token, session);
    return { token, session };
  }

  get(token: unknown): PushSession | undefined {
    return typeof token === 'string' ? this.sessions.get(token) : undefined;
  }

  close(token: string): void {
    this.sessions.delete(token);
  }
}
