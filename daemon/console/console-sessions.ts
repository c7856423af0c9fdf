import { randomBytes } from 'node:crypto';

/** One signed-in browser: the token it signed in with (by name: a revoked token ends it at once). */
export interface ConsoleSession {
  id: string;
  tokenName: string;
  /** The token's hash when signed in: a token revoked and made again under the name is another. */
  tokenHash: string;
  lastSeen: number;
}

export const SESSION_COOKIE = 'rack_session';
const IDLE_MS = 30 * 60_000;
const MAX_SESSIONS = 10_000;

/**
 * The console's sessions, kept in memory: a rackd restart signs everyone out (they sign in with
 * their token again). IDs are 32 random bytes; a session ends after 30 idle minutes or on sign-out.
 */
export class ConsoleSessions {
  private readonly sessions = new Map<string, ConsoleSession>();

  constructor(
    private readonly idleMs = IDLE_MS,
    private readonly now: () => number = Date.now,
  ) {}

  create(tokenName: string, tokenHash: string): ConsoleSession {
    this.sweep();
    // A flood of sign-ins must not grow memory without bound: the oldest give way.
    while (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    const session = { id: randomBytes(32).toString('base64url'), tokenName, tokenHash, lastSeen: this.now() };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The live session with this ID, its idle clock restarted; undefined when unknown or idle too long. */
  touch(id: string | undefined): ConsoleSession | undefined {
    if (id === undefined) return undefined;
    const session = this.sessions.get(id);
    if (!session) return undefined;
    if (this.now() - session.lastSeen > this.idleMs) {
      this.sessions.delete(id);
      return undefined;
    }
    session.lastSeen = this.now();
    return session;
  }

  end(id: string | undefined): void {
    if (id !== undefined) this.sessions.delete(id);
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, s] of this.sessions) if (now - s.lastSeen > this.idleMs) this.sessions.delete(id);
  }
}

/** The value of one cookie in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function sessionCookie(id: string, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

export function clearedCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}; Max-Age=0`;
}
