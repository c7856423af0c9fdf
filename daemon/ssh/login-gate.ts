import type { Socket } from 'node:net';
import type { LoginThrottle } from '../access/login-throttle.js';
import type { Logger } from '../log.js';

/**
 * OpenSSH's MaxStartups `start:rate:full`: past `start` connections waiting to log in, a new one is
 * dropped with probability `rate`%, rising linearly to 100% at `full`. A flood then leaves a
 * newcomer a fair chance instead of none; `N` alone is a hard cap (start = full = N).
 */
export interface MaxStartups {
  start: number;
  rate: number;
  full: number;
}

export interface LoginGateOptions {
  /** An unauthenticated connection is closed after this long (OpenSSH's LoginGraceTime). */
  graceMs: number;
  maxStartups: MaxStartups;
  /** Connections waiting to log in from one address (OpenSSH's PerSourceMaxStartups). */
  perSourceMaxStartups: number;
  throttle: LoginThrottle;
  logger: Logger;
  /** Drawn for each connection past MaxStartups' start (a test may fix it). */
  random?: () => number;
}

/** Keys refused on one connection before it is closed (OpenSSH's MaxAuthTries). */
const MAX_AUTH_TRIES = 6;
const USER_SHOWN = 64;
/** While connections keep being dropped, one log line per this long at most (per reason). */
const DROP_LOG_EVERY_MS = 60_000;
/**
 * The key exchange gets a part of the grace time: an honest client finishes it in one round
 * trip, and until then the connection holds a slot while having proved nothing at all.
 */
const KEX_MS = 10_000;

/** Whether a new connection is dropped, `pending` waiting already; `random` in [0, 1). */
export function dropsNewConnection(pending: number, limit: MaxStartups, random: number): boolean {
  if (pending >= limit.full) return true;
  if (pending < limit.start) return false;
  const percent = limit.rate + ((100 - limit.rate) * (pending - limit.start)) / (limit.full - limit.start);
  return random * 100 < percent;
}

/** One TCP connection that has not authenticated yet. */
class PendingLogin {
  user = '';
  refused = 0;
  timer: NodeJS.Timeout | undefined;
  constructor(
    readonly socket: Socket,
    readonly address: string,
    readonly since: number,
  ) {}
}

/**
 * Everything before a key is proved: the caps on connections that have not logged in (in all and
 * per address), their deadlines (the key exchange, then the grace time), the per-address throttle
 * of failed logins, and the one short log line a refused login leaves. It works on raw sockets,
 * before ssh2 sees a byte, so an idle or hostile client costs a socket and a timer, never a key
 * exchange, and one address cannot take every slot.
 */
export class LoginGate {
  private readonly pending = new Map<string, PendingLogin>();
  private readonly perSource = new Map<string, number>();
  private readonly dropped = new Map<string, { count: number; lastLog: number }>();

  constructor(private readonly opts: LoginGateOptions) {}

  /** Takes a new connection in, or closes it at once; true when it may go on to ssh2. */
  admit(socket: Socket): boolean {
    socket.on('error', () => undefined);
    const address = socket.remoteAddress ?? 'unknown';
    if (this.opts.throttle.blocked(address)) {
      socket.destroy();
      return false;
    }
    const fromSource = this.perSource.get(address) ?? 0;
    if (fromSource >= this.opts.perSourceMaxStartups) {
      socket.destroy();
      this.noteDropped('source', { ip: address, open: fromSource }, `ssh: ${fromSource} connections from ${address} are waiting to log in (RACK_SSH_PER_SOURCE_MAX_STARTUPS); dropping new ones from it`);
      return false;
    }
    const { start, rate, full } = this.opts.maxStartups;
    if (dropsNewConnection(this.pending.size, this.opts.maxStartups, (this.opts.random ?? Math.random)())) {
      socket.destroy();
      const how = this.pending.size >= full ? 'dropping new ones' : 'dropping some new ones';
      this.noteDropped('all', { open: this.pending.size }, `ssh: ${this.pending.size} connections are waiting to log in (RACK_SSH_MAX_STARTUPS ${start}:${rate}:${full}); ${how}`);
      return false;
    }
    const id = connectionId(address, socket.remotePort);
    const login = new PendingLogin(socket, address, Date.now());
    this.pending.set(id, login);
    this.perSource.set(address, fromSource + 1);
    this.deadline(login, Math.min(KEX_MS, Math.ceil(this.opts.graceMs / 2)), 'key exchange');
    socket.once('close', () => {
      clearTimeout(login.timer);
      // Still here on close: it never logged in.
      if (this.pending.get(id) !== login) return;
      this.forget(id, login);
      if (login.refused > 0) this.failed(login);
    });
    return true;
  }

  /** The connection from ip:port finished its key exchange: it has the rest of the grace time to log in. */
  handshaken(ip: string | undefined, port: number | undefined): void {
    const login = this.pending.get(connectionId(ip ?? 'unknown', port));
    if (login) this.deadline(login, login.since + this.opts.graceMs - Date.now(), 'login grace time');
  }

  /** A key was refused on the connection from ip:port; false when the connection has had its tries. */
  refused(ip: string | undefined, port: number | undefined, user: string): boolean {
    const login = this.pending.get(connectionId(ip ?? 'unknown', port));
    if (!login) return true;
    login.user = user;
    login.refused += 1;
    return login.refused < MAX_AUTH_TRIES;
  }

  /** The connection proved a key: it is no longer counted or timed (the address's failures stay). */
  authenticated(ip: string | undefined, port: number | undefined): void {
    const id = connectionId(ip ?? 'unknown', port);
    const login = this.pending.get(id);
    if (!login) return;
    clearTimeout(login.timer);
    this.forget(id, login);
  }

  /** Closes every connection that has not logged in (at stop). */
  closeAll(): void {
    for (const login of this.pending.values()) login.socket.destroy();
  }

  private deadline(login: PendingLogin, ms: number, what: string): void {
    clearTimeout(login.timer);
    login.timer = setTimeout(() => {
      this.opts.logger.debug({ ip: login.address }, `ssh ${what} over; closing`);
      login.socket.destroy();
    }, Math.max(0, ms));
    login.timer.unref();
  }

  private forget(id: string, login: PendingLogin): void {
    this.pending.delete(id);
    const left = (this.perSource.get(login.address) ?? 1) - 1;
    if (left > 0) this.perSource.set(login.address, left);
    else this.perSource.delete(login.address);
  }

  private failed(login: PendingLogin): void {
    const user = login.user.length > USER_SHOWN ? `${login.user.slice(0, USER_SHOWN)}...` : login.user;
    this.opts.logger.info({ ip: login.address, user, tries: login.refused }, 'ssh login refused');
    if (this.opts.throttle.fail(login.address)) {
      const seconds = Math.ceil(this.opts.throttle.retryAfterMs(login.address) / 1000);
      this.opts.logger.warn({ ip: login.address, seconds }, 'ssh: too many failed logins from this address; refusing it for a while');
    }
  }

  /** One warning per reason per minute while drops go on, with how many were dropped since the last. */
  private noteDropped(reason: 'all' | 'source', fields: Record<string, unknown>, message: string): void {
    const state = this.dropped.get(reason) ?? { count: 0, lastLog: 0 };
    this.dropped.set(reason, state);
    state.count += 1;
    const now = Date.now();
    if (now - state.lastLog < DROP_LOG_EVERY_MS) return;
    this.opts.logger.warn({ ...fields, dropped: state.count }, message);
    state.lastLog = now;
    state.count = 0;
  }
}

function connectionId(ip: string, port: number | undefined): string {
  return `${ip}|${port ?? 0}`;
}
