import type { Socket } from 'node:net';
import type { LoginThrottle } from '../access/login-throttle.js';
import type { Logger } from '../log.js';

export interface LoginGateOptions {
  /** An unauthenticated connection is closed after this long (OpenSSH's LoginGraceTime). */
  graceMs: number;
  /** Unauthenticated connections open at once; new ones past it are dropped (OpenSSH's MaxStartups, as a hard cap). */
  maxStartups: number;
  throttle: LoginThrottle;
  logger: Logger;
}

/** Keys refused on one connection before it is closed (OpenSSH's MaxAuthTries). */
const MAX_AUTH_TRIES = 6;
const USER_SHOWN = 64;
/** While connections keep being dropped, one log line per this long at most. */
const DROP_LOG_EVERY_MS = 60_000;

/** One TCP connection that has not authenticated yet. */
class PendingLogin {
  user = '';
  refused = 0;
  constructor(
    readonly socket: Socket,
    readonly address: string,
    readonly timer: NodeJS.Timeout,
  ) {}
}

/**
 * Everything before a key is proved: the cap on connections that have not logged in, their grace
 * time, the per-address throttle of failed logins, and the one short log line a refused login
 * leaves. It works on raw sockets, before ssh2 sees a byte, so an idle or hostile client costs a
 * socket and a timer, never a key exchange.
 */
export class LoginGate {
  private readonly pending = new Map<string, PendingLogin>();
  private dropped = 0;
  private lastDropLog = 0;

  constructor(private readonly opts: LoginGateOptions) {}

  /** Takes a new connection in, or closes it at once; true when it may go on to ssh2. */
  admit(socket: Socket): boolean {
    socket.on('error', () => undefined);
    const address = socket.remoteAddress ?? 'unknown';
    if (this.opts.throttle.blocked(address)) {
      socket.destroy();
      return false;
    }
    if (this.pending.size >= this.opts.maxStartups) {
      socket.destroy();
      this.noteDropped();
      return false;
    }
    const id = connectionId(address, socket.remotePort);
    const timer = setTimeout(() => {
      this.opts.logger.debug({ ip: address }, 'ssh login grace time over; closing');
      socket.destroy();
    }, this.opts.graceMs);
    timer.unref();
    const login = new PendingLogin(socket, address, timer);
    this.pending.set(id, login);
    socket.once('close', () => {
      clearTimeout(timer);
      // Still here on close: it never logged in.
      if (this.pending.get(id) !== login) return;
      this.pending.delete(id);
      if (login.refused > 0) this.failed(login);
    });
    return true;
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
    this.pending.delete(id);
  }

  /** Closes every connection that has not logged in (at stop). */
  closeAll(): void {
    for (const login of this.pending.values()) login.socket.destroy();
  }

  private failed(login: PendingLogin): void {
    const user = login.user.length > USER_SHOWN ? `${login.user.slice(0, USER_SHOWN)}...` : login.user;
    this.opts.logger.info({ ip: login.address, user, tries: login.refused }, 'ssh login refused');
    if (this.opts.throttle.fail(login.address)) {
      const seconds = Math.ceil(this.opts.throttle.retryAfterMs(login.address) / 1000);
      this.opts.logger.warn({ ip: login.address, seconds }, 'ssh: too many failed logins from this address; refusing it for a while');
    }
  }

  private noteDropped(): void {
    this.dropped += 1;
    const now = Date.now();
    if (now - this.lastDropLog < DROP_LOG_EVERY_MS) return;
    this.opts.logger.warn(
      { open: this.pending.size, dropped: this.dropped },
      `ssh: ${this.opts.maxStartups} connections are waiting to log in (RACK_SSH_MAX_STARTUPS); dropping new ones`,
    );
    this.lastDropLog = now;
    this.dropped = 0;
  }
}

function connectionId(ip: string, port: number | undefined): string {
  return `${ip}|${port ?? 0}`;
}
