import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { tokenPrincipal, type Caller } from '../access/principal.js';
import { isAppName } from '../app-name.js';
import type { Services } from '../commands/command.js';
import { clientAddress, type TokenAuth } from '../http/token-auth.js';
import { RackError } from '../rack-error.js';
import type { AppRecord, AuditEntry, BuildRecord, ReleaseRecord, TokenRecord } from '../store/records.js';
import { accessPage, accessPanel, createdToken, type KeyRow, type TokenRow } from './access-view.js';
import { appsList, appsPage, createdApp, signInPage, type AppSummary } from './apps-view.js';
import { AppRoutes } from './app-routes.js';
import { auditTable } from './audit-view.js';
import { CommitSubjects } from './commit-subjects.js';
import { ConsoleCommands } from './console-commands.js';
import { ConsoleEvents } from './console-events.js';
import { clearedCookies, ConsoleSessions, cookieValues, sessionCookie, sessionCookieFor } from './console-sessions.js';
import { publicOrigin, readForm, redirect, sameOrigin, sendError, sendHtml, SECURITY_HEADERS, SIGN_OUT_WORDS, type ConsoleRequest, type SignOutReason } from './console-request.js';
import { html } from './html-template.js';
import { ASSETS, errorBox, mayRun, page } from './layout-view.js';
import { PipelinesRoutes } from './pipelines-routes.js';
import { RackRoutes } from './rack-routes.js';

const ASSET_FILES: Record<string, { file: (root: string) => string; type: string }> = {
  'console.css': { file: (root) => join(root, 'daemon', 'console', 'assets', 'console.css'), type: 'text/css; charset=utf-8' },
  'favicon.svg': { file: (root) => join(root, 'daemon', 'console', 'assets', 'favicon.svg'), type: 'image/svg+xml' },
  'console.js': { file: (root) => join(root, 'daemon', 'console', 'assets', 'console.js'), type: 'text/javascript; charset=utf-8' },
  // htmx 2, from the package (pinned in package.json), never from a CDN.
  'htmx.min.js': { file: (root) => join(root, 'node_modules', 'htmx.org', 'dist', 'htmx.min.js'), type: 'text/javascript; charset=utf-8' },
};

/**
 * The Console: server-rendered pages at `/console/`, signed in with an API token. A session is the
 * token's principal; every query and change runs as a rack command through `invoke`, so what a
 * page shows and does is exactly what the token may do over ssh or the API.
 */
export class Console {
  readonly events: ConsoleEvents;
  private readonly sessions: ConsoleSessions;
  private readonly commands: ConsoleCommands;
  private readonly apps: AppRoutes;
  private readonly rack: RackRoutes;
  private readonly pipelines: PipelinesRoutes;
  private readonly assets = new Map<string, Buffer>();

  constructor(
    private readonly services: Services,
    private readonly auth: TokenAuth,
  ) {
    this.sessions = new ConsoleSessions(join(services.config.home, 'console-sessions.json'));
    this.commands = new ConsoleCommands(services);
    this.events = new ConsoleEvents(services.store, services.logs);
    this.apps = new AppRoutes({ config: services.config, commands: this.commands, events: this.events, subjects: new CommitSubjects() });
    this.rack = new RackRoutes(this.commands, this.events);
    this.pipelines = new PipelinesRoutes(this.commands, this.events);
  }

  async start(): Promise<void> {
    await this.sessions.load();
  }

  async stop(): Promise<void> {
    this.events.stop();
    await this.sessions.flush();
  }

  /** Paths the console answers: `/console` and below (and `/` for browsers, sent on to it). */
  static owns(req: IncomingMessage, path: string): boolean {
    if (path === '/console' || path.startsWith('/console/') || path === '/favicon.ico') return true;
    return path === '/' && (req.headers.accept ?? '').includes('text/html');
  }

  handle = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const partial = req.headers['hx-request'] === 'true';
    let caller: Caller | undefined;
    try {
      const path = url.pathname;
      if (path === '/' || path === '/console') return redirect(res, '/console/');
      if (path.startsWith(`${ASSETS}/`)) return await this.asset(res, path.slice(ASSETS.length + 1));
      // Browsers ask for it at the root whatever the page says: the same small SVG.
      if (path === '/favicon.ico') return await this.asset(res, 'favicon.svg');
      const method = req.method ?? 'GET';
      if (method !== 'GET' && method !== 'POST') throw new RackError('method_not_allowed', `${method} is not answered here`);
      if (method === 'POST' && !sameOrigin(req)) throw new RackError('forbidden', 'refused: this request did not come from the console’s own pages');
      const origin = publicOrigin(req);
      const cookie = sessionCookieFor(origin);
      const sessionIds = cookieValues(req.headers.cookie, cookie.name);
      if (sessionIds.length > 1) {
        // Another site under this host's domain set one of them, and which is which cannot be
        // told: picking either could sign this browser in as someone else (session fixation).
        for (const id of sessionIds) this.sessions.end(id);
        return twoSessions(res, partial, clearedCookies(cookie, origin.hostname));
      }
      const sessionId = sessionIds[0];
      if (path === '/console/sign-in') return method === 'POST' ? await this.signIn(req, res) : sendHtml(res, 200, page({ title: 'Sign in', body: signInPage(endedWords(url)) }));
      if (path === '/console/sign-out' && method === 'POST') {
        this.sessions.end(sessionId);
        return redirect(res, '/console/sign-in', { 'Set-Cookie': clearedCookies(cookie, origin.hostname) });
      }
      const signedIn = await this.caller(req, sessionId);
      if (!('caller' in signedIn)) {
        const signInUrl = `/console/sign-in${signedIn.ended ? `?ended=${signedIn.ended}` : ''}`;
        // A page's stream: told in its own terms, so the page goes to sign-in instead of retrying.
        if (path.endsWith('/events')) return signedOutStream(res, signedIn.ended);
        if (partial) {
          res.writeHead(401, { ...SECURITY_HEADERS, 'HX-Redirect': signInUrl });
          return void res.end();
        }
        if (method === 'POST') throw new RackError('unauthorized', signedIn.ended ? SIGN_OUT_WORDS[signedIn.ended] : 'signed out: sign in again');
        return redirect(res, signInUrl);
      }
      caller = signedIn.caller;
      const token = signedIn.token;
      const r: ConsoleRequest = {
        req,
        res,
        url,
        caller,
        partial,
        stillSignedIn: () => this.stillSignedIn(sessionId),
        watchSignOut: (end) => this.watchSignOut(token, end),
      };
      const parts = path.split('/').slice(2).map(decodePart);
      if (parts[0] === 'apps' && parts[1]) return await this.apps.handle(r, parts[1], parts.slice(2).filter((p, i, all) => p !== '' || i < all.length - 1));
      if (parts[0] === 'rack') return await this.rack.handle(r, parts.slice(1).filter((p, i, all) => p !== '' || i < all.length - 1));
      if (parts[0] === 'pipelines') return await this.pipelines.handle(r, parts.slice(1).filter((p, i, all) => p !== '' || i < all.length - 1));
      return await this.rackPage(r, method, parts.filter((p) => p !== '').join('/'));
    } catch (err) {
      sendError({ res, partial, ...(caller ? { caller } : {}) }, err);
    }
  };

  private async asset(res: ServerResponse, name: string): Promise<void> {
    const spec = ASSET_FILES[name];
    if (!spec) throw new RackError('not_found', 'no such asset');
    let data = this.assets.get(name);
    if (!data) {
      data = await readFile(spec.file(this.services.config.installDir));
      this.assets.set(name, data);
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': spec.type, 'Content-Length': data.length, 'Cache-Control': 'public, max-age=300' });
    res.end(data);
  }

  private async signIn(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const token = ((await readForm(req)).get('token') ?? '').trim();
    let caller: Caller;
    try {
      // The API's own check: the same tokens, expiry and failed-login throttle as Bearer requests.
      caller = await this.auth.check(token, clientAddress(req));
    } catch (err) {
      const error = RackError.from(err);
      return sendHtml(res, error.code === 'throttled' ? 429 : 401, page({ title: 'Sign in', body: signInPage(error.code === 'throttled' ? error.message : 'That token is not valid (or has expired).') }));
    }
    const record = await this.services.store.tokens.get(caller.principal.name);
    const id = this.sessions.create(caller.principal.name, record?.hash ?? '');
    redirect(res, '/console/', { 'Set-Cookie': sessionCookie(id, sessionCookieFor(publicOrigin(req))) });
  }

  /** The session's caller, its token read again: a revoked or expired token ends the session at once (and says which). */
  private async caller(req: IncomingMessage, sessionId: string | undefined): Promise<{ caller: Caller; token: TokenRecord } | { ended?: SignOutReason }> {
    const session = this.sessions.touch(sessionId);
    if (!session) return {};
    const token = await this.services.store.tokens.get(session.tokenName);
    const ended = !token || token.hash !== session.tokenHash ? 'revoked' : token.expiresAt !== null && Date.parse(token.expiresAt) <= Date.now() ? 'expired' : undefined;
    if (ended || !token) {
      this.sessions.end(sessionId);
      return { ended: ended ?? 'revoked' };
    }
    return { caller: { principal: tokenPrincipal(token), via: 'http', address: clientAddress(req) }, token };
  }

  /**
   * Calls `end` when this token is revoked (told by the token store) or reaches its expiry (a
   * timer), never synchronously. A long stream needs this: its heartbeat alone would let lines of
   * a revoked token's app arrive for up to its interval.
   */
  private watchSignOut(token: TokenRecord, end: (reason: SignOutReason) => void): () => void {
    let done = false;
    const once = (reason: SignOutReason) => {
      if (done) return;
      done = true;
      stop();
      end(reason);
    };
    const offRevoke = this.services.store.tokens.onRevoke((name) => {
      if (name === token.name) setImmediate(() => once('revoked'));
    });
    let timer: NodeJS.Timeout | undefined;
    if (token.expiresAt !== null) {
      // setTimeout holds at most ~24.8 days; a later expiry is left to the heartbeat's check.
      const wait = Date.parse(token.expiresAt) - Date.now();
      if (wait < MAX_TIMER_MS) {
        timer = setTimeout(() => once('expired'), Math.max(0, wait));
        timer.unref();
      }
    }
    function stop(): void {
      offRevoke();
      clearTimeout(timer);
    }
    return () => {
      done = true;
      stop();
    };
  }

  private async stillSignedIn(sessionId: string | undefined): Promise<boolean> {
    const session = this.sessions.peek(sessionId);
    if (!session) return false;
    const token = await this.services.store.tokens.get(session.tokenName);
    return token !== undefined && token.hash === session.tokenHash && (token.expiresAt === null || Date.parse(token.expiresAt) > Date.now());
  }

  private async rackPage(r: ConsoleRequest, method: string, path: string): Promise<void> {
    const c = r.caller;
    const key = `${method} ${path}`;
    switch (key) {
      case 'GET ': {
        const can = { create: mayRun(c.principal, '', 'apps:create'), destroy: mayRun(c.principal, '', 'apps:destroy') };
        const destroyed = r.url.searchParams.get('destroyed') ?? '';
        const body = appsPage(await this.appSummaries(c), can, isAppName(destroyed) ? destroyed : undefined);
        return sendHtml(r.res, 200, page({ title: 'Apps', principal: c.principal, body }));
      }
      case 'GET app-list':
        return sendHtml(r.res, 200, appsList(await this.appSummaries(c), mayRun(c.principal, '', 'apps:destroy')));
      case 'POST apps': {
        const name = ((await readForm(r.req)).get('name') ?? '').trim();
        await this.commands.createApp(c, name, () => undefined);
        const info = await this.commands.query<{ gitRemote: string }>(c, 'apps:info', name);
        return sendHtml(r.res, 200, createdApp(name, info.gitRemote), { 'HX-Trigger': 'rack-apps' });
      }
      case 'GET audit': {
        const entries = await this.commands.query<AuditEntry[]>(c, 'audit', '', [], { num: '200' });
        return sendHtml(r.res, 200, page({ title: 'Audit', principal: c.principal, body: html`<h1>Audit</h1>${auditTable(entries, true)}` }));
      }
      case 'GET access':
        return sendHtml(r.res, 200, page({ title: 'Access', principal: c.principal, body: accessPage(...(await this.access(c))) }));
      case 'GET access/panel':
        return sendHtml(r.res, 200, accessPanel(...(await this.access(c))));
      case 'POST access/tokens': {
        const form = await readForm(r.req);
        const created = await this.commands.createToken(c, form.get('name') ?? '', splitApps(form.get('apps')), form.get('deploy-only') === 'yes', form.get('expires') || undefined);
        // The lists fetch themselves again on the event this answer triggers: one copy of them on the page.
        return sendHtml(r.res, 200, createdToken(created.name, created.token), { 'HX-Trigger': 'rack-access' });
      }
      case 'POST access/tokens/revoke':
      case 'POST access/keys/remove':
      case 'POST access/keys': {
        const form = await readForm(r.req);
        const name = form.get('name') ?? '';
        const lines: string[] = [];
        const sink = (l: string) => lines.push(l);
        if (key === 'POST access/tokens/revoke') await this.commands.revokeToken(c, name, sink);
        else if (key === 'POST access/keys/remove') await this.commands.removeKey(c, name, sink);
        else await this.commands.addKey(c, name, splitApps(form.get('apps')), form.get('deploy-only') === 'yes', form.get('key') ?? '', sink);
        return sendHtml(r.res, 200, html`<pre class="live">${lines.join('\n')}</pre>`, { 'HX-Trigger': 'rack-access' });
      }
      default:
        throw new RackError('not_found', `nothing at ${r.url.pathname.slice(0, 100)}`);
    }
  }

  private async access(c: Caller): Promise<[TokenRow[], KeyRow[]]> {
    return [await this.commands.query<TokenRow[]>(c, 'tokens', ''), await this.commands.query<KeyRow[]>(c, 'keys', '')];
  }

  private async appSummaries(c: Caller): Promise<AppSummary[]> {
    const apps = await this.commands.query<(AppRecord & { url: string })[]>(c, 'apps', '');
    return Promise.all(apps.map((a) => this.appSummary(c, a)));
  }

  /** An app's line in the list: what serves, and whether the last deploy after it failed. */
  private async appSummary(c: Caller, a: AppRecord & { url: string }): Promise<AppSummary> {
    const summary: AppSummary = { name: a.name, url: a.url, currentRelease: a.currentRelease };
    try {
      // `apps` says null before the first release (the store keeps 0).
      if (!a.currentRelease) {
        // Never served: a release that failed its rollout, or a build that failed, is the last deploy.
        const [release] = await this.commands.query<ReleaseRecord[]>(c, 'releases', a.name);
        if (release) return { ...summary, lastFailed: release.status === 'failed' ? (release.error ?? 'failed') : undefined, deployedAt: release.createdAt, deployedBy: release.createdBy };
        const [build] = await this.commands.query<BuildRecord[]>(c, 'builds', a.name);
        return build?.status === 'failed' ? { ...summary, lastFailed: build.error ?? 'the build failed', deployedAt: build.createdAt, deployedBy: build.createdBy } : summary;
      }
      const rel = await this.commands.query<ReleaseRecord>(c, 'releases:info', a.name, [`v${a.currentRelease}`]);
      const next = await this.newerFailure(c, a.name, a.currentRelease);
      return { ...summary, status: rel.status, deployedAt: rel.createdAt, deployedBy: rel.createdBy, ...(next ? { lastFailed: next } : {}) };
    } catch {
      return summary;
    }
  }

  /** The error of a failed release after the serving one (newer ones are only failed or recorded): one lookup when there is none. */
  private async newerFailure(c: Caller, app: string, current: number): Promise<string | undefined> {
    let failed: string | undefined;
    for (let v = current + 1; v <= current + 5; v++) {
      try {
        const rel = await this.commands.query<ReleaseRecord>(c, 'releases:info', app, [`v${v}`]);
        failed = rel.status === 'failed' ? (rel.error ?? 'failed') : undefined;
      } catch {
        return failed;
      }
    }
    return failed;
  }
}

/** Two session cookies in one request: signed out, told why, both cookies cleared where rack can. */
function twoSessions(res: ServerResponse, partial: boolean, cleared: string[]): void {
  const message = 'This browser sent two rack session cookies, so rack used neither and signed it out. Another site under this host name may have set one: sign in again, and if this repeats, clear the cookies of this site.';
  if (partial) return sendHtml(res, 400, errorBox(message), { 'Set-Cookie': cleared, 'HX-Redirect': '/console/sign-in' });
  sendHtml(res, 400, page({ title: 'Signed out', body: html`<h1>400</h1>${errorBox(message)}<p><a href="/console/sign-in">Sign in</a></p>` }), { 'Set-Cookie': cleared });
}

function signedOutStream(res: ServerResponse, reason: SignOutReason | undefined): void {
  res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(`event: signed-out\ndata: ${JSON.stringify(reason ? { reason } : {})}\n\n`);
}

/** The sign-in page's reason line for `?ended=` (only rack's own words, never the query's text). */
function endedWords(url: URL): string | undefined {
  const reason = url.searchParams.get('ended');
  return reason !== null && Object.hasOwn(SIGN_OUT_WORDS, reason) ? SIGN_OUT_WORDS[reason as SignOutReason] : undefined;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new RackError('not_found', 'that path is not valid');
  }
}

const splitApps = (raw: string | null) => (raw ?? '').split(/[\s,]+/).filter((a) => a !== '');
