import { timingSafeEqual } from 'node:crypto';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import ssh2, { type Connection, type ServerChannel } from 'ssh2';
import type { LoginThrottle } from '../access/login-throttle.js';
import type { Logger } from '../log.js';
import type { KeyRecord } from '../store/records.js';
import { keyPrincipal, type Caller } from '../access/principal.js';
import { LoginGate, type MaxStartups } from './login-gate.js';
import { isOversizedPacket, tellOversized } from './oversized-request.js';

/** One `ssh host COMMAND` as the rest of rack sees it. */
export interface ExecRequest {
  /** The key's holder, and the address it came from. */
  caller: Caller;
  /** The SSH login name (`git` for pushes, or an app name). */
  login: string;
  /** Variables the client sent with SendEnv/SetEnv (only RACK_APP is kept). */
  env: Record<string, string>;
  command: string;
  /** Terminal size when the client asked for one (`ssh -t`). */
  pty: { cols: number; rows: number } | null;
  channel: ServerChannel;
}

export interface SshServerOptions {
  hostKey: string;
  keys: () => Promise<KeyRecord[]>;
  exec: (req: ExecRequest) => Promise<number>;
  logger: Logger;
  loginGraceMs: number;
  maxStartups: MaxStartups;
  perSourceMaxStartups: number;
  /** A logged-in client silent this long is asked whether it is there; three unanswered asks end it. */
  keepaliveMs: number;
  throttle: LoginThrottle;
}

/** Keepalives a client may leave unanswered before its connection is closed (OpenSSH's ClientAliveCountMax). */
const KEEPALIVE_COUNT_MAX = 3;

const ACCEPTED_ENV = new Set(['RACK_APP']);
/** On stop, how long sessions told that rack is restarting get to close their channels. */
const TELL_CLOSE_MS = 3_000;

/** Public-key-only SSH endpoint for `git push` and commands. Unknown keys never get a session. */
export class SshServer {
  private readonly server: ssh2.Server;
  /** rack listens itself and hands ssh2 only the sockets the gate lets through. */
  private readonly listener: NetServer;
  private readonly gate: LoginGate;
  private readonly clients = new Set<Connection>();
  /** Exec channels not yet answered with an exit status. */
  private readonly open = new Set<ServerChannel>();
  /** The connection each open exec channel is on. */
  private readonly owners = new Map<ServerChannel, Connection>();
  /** Each admitted socket by address and port, which is all ssh2 tells of a connection. */
  private readonly sockets = new Map<string, Socket>();

  constructor(private readonly opts: SshServerOptions) {
    this.gate = new LoginGate({
      graceMs: opts.loginGraceMs,
      maxStartups: opts.maxStartups,
      perSourceMaxStartups: opts.perSourceMaxStartups,
      throttle: opts.throttle,
      logger: opts.logger,
    });
    this.server = new ssh2.Server(
      { hostKeys: [opts.hostKey], ident: 'rack', keepaliveInterval: opts.keepaliveMs, keepaliveCountMax: KEEPALIVE_COUNT_MAX },
      (client, info) => this.onClient(client, info),
    );
    this.server.on('error', (err: Error) => opts.logger.error({ err: err.message }, 'ssh server error'));
    // Without TCP_NODELAY a command's last small packets wait on the client's delayed ACK: 40 ms
    // added to about one command in two.
    this.listener = createServer({ noDelay: true }, (socket) => {
      if (!this.gate.admit(socket)) return;
      // The kernel's own probes, for a peer gone while nothing is being sent (ssh2's keepalives
      // start only once a client has logged in).
      socket.setKeepAlive(true, opts.keepaliveMs);
      const id = `${socket.remoteAddress}|${socket.remotePort}`;
      this.sockets.set(id, socket);
      socket.once('close', () => this.sockets.delete(id));
      this.server.injectSocket(socket);
    });
  }

  start(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.listener.once('error', reject);
      this.listener.listen(port, host, () => {
        this.listener.off('error', reject);
        this.listener.on('error', (err: Error) => this.opts.logger.error({ err: err.message }, 'ssh listener error'));
        const address = this.listener.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  }

  /**
   * Sessions still open are told why they end (an ssh disconnect carries no reason a client
   * shows), with a failed exit status, before their connections close. `keep` (the channel of a
   * rack:update, which outlives this rackd's other parts to tell its client how the switch went)
   * and its connection stay open; the port is free at once all the same.
   */
  async stop(keep?: unknown): Promise<void> {
    const closed = new Promise<void>((resolve) => this.listener.close(() => resolve()));
    this.gate.closeAll();
    const others = [...this.open].filter((channel) => channel !== keep);
    // The words travel behind the channel's queued output, and a disconnect would overtake them:
    // the connections end once the clients have closed their channels (or after a short wait).
    const told = others.map((channel) => new Promise<void>((resolve) => channel.once('close', () => resolve())));
    for (const channel of others) this.finish(channel, 1, ' !     rack is restarting; try again in a moment\n');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(told), new Promise<void>((resolve) => (timer = setTimeout(resolve, TELL_CLOSE_MS)))]);
    clearTimeout(timer);
    const kept = this.owners.get(keep as ServerChannel);
    for (const client of this.clients) if (client !== kept) client.end();
    // The listener's close waits for its connections, the kept one among them.
    if (kept === undefined) await closed;
  }

  /** Ends an exec channel once: its last words on stderr, the exit status, then the close. */
  private finish(channel: ServerChannel, code: number, words?: string): void {
    if (!this.open.delete(channel)) return;
    try {
      if (words) channel.stderr.write(words);
      channel.exit(code);
      channel.end();
    } catch {
      // The client closed the channel meanwhile: nobody is left to tell.
    }
  }

  private onClient(client: Connection, info: ssh2.ClientInfo): void {
    const address = info.ip;
    let key: KeyRecord | undefined;
    let login = '';
    this.clients.add(client);
    client.on('close', () => this.clients.delete(client));
    client.on('error', (err: Error & { level?: string }) => {
      if (isOversizedPacket(err)) tellOversized(client);
      if (err.level === 'client-timeout') {
        // ssh2 only ends the socket, and a FIN to a laptop asleep waits out TCP's retries (many
        // minutes) while its session holds what it holds: a push lock, a follow, a run.
        this.opts.logger.info({ ip: address, user: login.slice(0, 64) }, 'ssh client stopped answering keepalives; closing its connection');
        this.sockets.get(`${info.ip}|${info.port}`)?.destroy();
        return;
      }
      this.opts.logger.debug({ err: err.message }, 'ssh client error');
    });
    client.once('handshake', () => this.gate.handshaken(info.ip, info.port));

    client.on('authentication', (ctx) => {
      const refuse = () => {
        // The gate logs the refusal once, when the connection closes without logging in.
        if (this.gate.refused(info.ip, info.port, ctx.username)) ctx.reject(['publickey']);
        else client.end();
      };
      // `none` is every client's opening question, not a failed login; passwords are guesses.
      if (ctx.method === 'none') return ctx.reject(['publickey']);
      if (ctx.method !== 'publickey') return refuse();
      void this.findKey(ctx.key.data)
        .then((found) => {
          if (!found) return refuse();
          // Without a signature the client only asks whether the key would do; with one it proves it holds it.
          if (ctx.signature) {
            const parsed = ssh2.utils.parseKey(found.publicKey);
            if (parsed instanceof Error || Array.isArray(parsed) || parsed.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) !== true) {
              return refuse();
            }
            key = found;
            login = ctx.username;
          }
          ctx.accept();
        })
        .catch(() => {
          // The client may be gone by now; answering it then throws, and nobody is left to tell.
          try {
            refuse();
          } catch {
            client.end();
          }
        });
    });

    client.on('ready', () => {
      this.gate.authenticated(info.ip, info.port);
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        const env: Record<string, string> = {};
        let pty: ExecRequest['pty'] = null;
        session.on('env', (accept, _reject, info) => {
          if (ACCEPTED_ENV.has(info.key)) env[info.key] = info.val;
          accept?.();
        });
        session.on('pty', (accept, _reject, info) => {
          pty = { cols: info.cols || 80, rows: info.rows || 24 };
          accept?.();
        });
        session.on('shell', (accept) => {
          const channel = accept();
          channel.stderr.write(' !     rack has no interactive shell; try: ssh rack help\r\n');
          channel.exit(1);
          channel.end();
        });
        session.on('exec', (accept, _reject, info) => {
          const channel = accept();
          channel.on('error', () => undefined);
          this.open.add(channel);
          this.owners.set(channel, client);
          channel.once('close', () => {
            this.open.delete(channel);
            this.owners.delete(channel);
          });
          void this.opts
            .exec({ caller: { principal: keyPrincipal(key!), via: 'ssh', address }, login, env: { ...env }, command: info.command, pty, channel })
            .catch(() => 1)
            .then((code) => this.finish(channel, code));
        });
      });
    });
  }

  private async findKey(data: Buffer): Promise<KeyRecord | undefined> {
    for (const k of await this.opts.keys()) {
      const blob = Buffer.from(k.publicKey.split(' ')[1] ?? '', 'base64');
      if (blob.length === data.length && timingSafeEqual(blob, data)) return k;
    }
    return undefined;
  }
}
