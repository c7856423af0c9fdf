import { timingSafeEqual } from 'node:crypto';
import ssh2, { type Connection, type ServerChannel } from 'ssh2';
import type { Logger } from '../log.js';
import type { KeyRecord } from '../store/records.js';

/** One `ssh host COMMAND` as the rest of rack sees it. */
export interface ExecRequest {
  key: KeyRecord;
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
}

const ACCEPTED_ENV = new Set(['RACK_APP']);

/** Public-key-only SSH endpoint for `git push` and commands. Unknown keys never get a session. */
export class SshServer {
  private readonly server: ssh2.Server;
  private readonly clients = new Set<Connection>();

  constructor(private readonly opts: SshServerOptions) {
    this.server = new ssh2.Server({ hostKeys: [opts.hostKey], ident: 'rack' }, (client) => this.onClient(client));
    this.server.on('error', (err: Error) => opts.logger.error({ err }, 'ssh server error'));
  }

  start(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        const address = this.server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  }

  async stop(): Promise<void> {
    for (const client of this.clients) client.end();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onClient(client: Connection): void {
    this.clients.add(client);
    client.on('close', () => this.clients.delete(client));
    client.on('error', (err) => this.opts.logger.debug({ err: err.message }, 'ssh client error'));
    let key: KeyRecord | undefined;
    let login = '';

    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      void this.findKey(ctx.key.data)
        .then((found) => {
          if (!found) {
            this.opts.logger.info({ user: ctx.username }, 'ssh key refused');
            return ctx.reject(['publickey']);
          }
          // Without a signature the client only asks whether the key would do; with one it proves it holds it.
          if (ctx.signature) {
            const parsed = ssh2.utils.parseKey(found.publicKey);
            if (parsed instanceof Error || Array.isArray(parsed) || parsed.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) !== true) {
              return ctx.reject(['publickey']);
            }
            key = found;
            login = ctx.username;
          }
          ctx.accept();
        })
        .catch(() => ctx.reject(['publickey']));
    });

    client.on('ready', () => {
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
          void this.opts
            .exec({ key: key!, login, env: { ...env }, command: info.command, pty, channel })
            .catch(() => 1)
            .then((code) => {
              channel.exit(code);
              channel.end();
            });
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
