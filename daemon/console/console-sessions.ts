import { createHash, randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';

/** One signed-in browser: the token it signed in with (by name: a revoked token ends it at once). */
export interface ConsoleSession {
  /** SHA-256 of the cookie's value: the file of sessions holds nothing a browser could present. */
  idHash: string;
  tokenName: string;
  /** The token's hash when signed in: a token revoked and made again under the name is another. */
  tokenHash: string;
  lastSeen: number;
}

export const SESSION_COOKIE = 'rack_session';
const IDLE_MS = 30 * 60_000;
const MAX_SESSIONS = 10_000;
/** Last-seen times are saved at most this often: the idle limit is 30 minutes, a minute off is nothing. */
const SAVE_EVERY_MS = 60_000;

const hashId = (id: string) => createHash('sha256').update(id).digest('hex');

/**
 * The console's sessions: 32 random bytes in an HttpOnly cookie, ended after 30 idle minutes or on
 * sign-out. They are kept in a file in RACK_HOME (hashed IDs, mode 0600), so a page open across a
 * rackd restart carries on instead of signing its user out.
 */
export class ConsoleSessions {
  private readonly sessions = new Map<string, ConsoleSession>();
  private lastSave = 0;
  private saving: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string | undefined,
    private readonly idleMs = IDLE_MS,
    private readonly now: () => number = Date.now,
  ) {}

  async load(): Promise<void> {
    if (!this.file) return;
    try {
      const saved = JSON.parse(await readFile(this.file, 'utf8')) as ConsoleSession[];
      for (const s of saved) if (this.now() - s.lastSeen <= this.idleMs) this.sessions.set(s.idHash, s);
    } catch {
      // No file yet, or a damaged one: nobody is signed in.
    }
  }

  /** A new session; returns the cookie value (never kept). */
  create(tokenName: string, tokenHash: string): string {
    this.sweep();
    // A flood of sign-ins must not grow memory without bound: the oldest give way.
    while (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    this.sessions.set(hashId(id), { idHash: hashId(id), tokenName, tokenHash, lastSeen: this.now() });
    this.save(true);
    return id;
  }

  /** The live session of this cookie value, its idle clock restarted; undefined when unknown or idle too long. */
  touch(id: string | undefined): ConsoleSession | undefined {
    if (id === undefined || id === '') return undefined;
    const session = this.sessions.get(hashId(id));
    if (!session) return undefined;
    if (this.now() - session.lastSeen > this.idleMs) {
      this.end(id);
      return undefined;
    }
    session.lastSeen = this.now();
    this.save(false);
    return session;
  }

  /** The live session, without counting this as activity (a page's open stream is not). */
  peek(id: string | undefined): ConsoleSession | undefined {
    const session = id === undefined ? undefined : this.sessions.get(hashId(id));
    return session !== undefined && this.now() - session.lastSeen <= this.idleMs ? session : undefined;
  }

  end(id: string | undefined): void {
    if (id !== undefined && this.sessions.delete(hashId(id))) this.save(true);
  }

  /** Waits for the last save (rackd's stop). */
  async flush(): Promise<void> {
    await this.saving;
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, s] of this.sessions) if (now - s.lastSeen > this.idleMs) this.sessions.delete(key);
  }

  private save(now: boolean): void {
    const file = this.file;
    if (!file || (!now && this.now() - this.lastSave < SAVE_EVERY_MS)) return;
    this.lastSave = this.now();
    const data = JSON.stringify([...this.sessions.values()]);
    this.saving = this.saving
      .then(async () => {
        await writeFile(`${file}.tmp`, data, { mode: 0o600 });
        await rename(`${file}.tmp`, file);
      })
      .catch(() => undefined);
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
