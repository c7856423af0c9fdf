import { randomBytes } from 'node:crypto';

export interface PushSession {
  app: string;
  keyName: string;
  repo: string;
  /** Fires when the pusher goes away: a push nobody waits for must not go on to release. */
  interrupted: AbortSignal;
}

/**
 * Pushes in progress, by a random token handed to git-receive-pack's environment. The hook shows
 * the token back over the control socket, so the daemon knows which app and key a hook speaks for
 * without trusting anything else the hook says.
 */
export class PushSessions {
  private readonly sessions = new Map<string, PushSession>();

  open(session: PushSession): string {
    const token = randomBytes(24).toString('hex');
    this.sessions.set(token, session);
    return token;
  }

  get(token: unknown): PushSession | undefined {
    return typeof token === 'string' ? this.sessions.get(token) : undefined;
  }

  close(token: string): void {
    this.sessions.delete(token);
  }
}
