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

/** Every value a Cookie header gives `name`: a browser sends one per matching domain and path. */
export function cookieValues(header: string | undefined, name: string): string[] {
  const values: string[] = [];
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) values.push(part.slice(eq + 1).trim());
  }
  return values;
}

/** The session cookie a console origin can hold: its name, and whether it is sent over https only. */
export interface SessionCookie {
  name: string;
  secure: boolean;
}

/**
 * `__Host-rack_session` wherever the browser takes it: a browser keeps a `__Host-` cookie only if
 * this very host set it with Secure, Path=/ and no Domain, so no app on a neighbouring or parent
 * host can plant one for the console (session fixation). Browsers take Secure cookies only in a
 * secure context: https, and plain http to `localhost`, `*.localhost` and loopback addresses.
 * Over plain http to any other host a sibling's `Domain=` cookie cannot be kept out by any
 * attribute, so the name stays `rack_session`: rack then refuses two session cookies in one
 * request and keeps apps off the console's host and RACK_DOMAIN, but only https closes it.
 */
export function sessionCookieFor(origin: { secure: boolean; hostname: string }): SessionCookie {
  const h = origin.hostname.toLowerCase();
  const loopback = h === 'localhost' || h.endsWith('.localhost') || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '[::1]';
  return origin.secure || loopback ? { name: `__Host-${SESSION_COOKIE}`, secure: true } : { name: SESSION_COOKIE, secure: false };
}

export function sessionCookie(id: string, cookie: SessionCookie): string {
  return `${cookie.name}=${id}; Path=/; HttpOnly; SameSite=Strict${cookie.secure ? '; Secure' : ''}`;
}

/**
 * Set-Cookie lines that end the session cookie: the console's own, and (for a plain `rack_session`)
 * any a neighbour set with `Domain=` this host or one of its parents, with Path=/, which this host
 * may overwrite.
 */
export function clearedCookies(cookie: SessionCookie, hostname: string): string[] {
  const end = (domain: string) => `${cookie.name}=; Path=/; HttpOnly; SameSite=Strict${cookie.secure ? '; Secure' : ''}${domain}; Max-Age=0`;
  const lines = [end('')];
  if (cookie.name.startsWith('__Host-')) return lines;
  const labels = hostname.toLowerCase().split('.');
  for (let i = 0; i < labels.length - 1; i++) lines.push(end(`; Domain=${labels.slice(i).join('.')}`));
  return lines;
}
