import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { LogLine } from '../logs/log-hub.js';
import type { DrainTransport } from './drain.js';
import { resolveDestination, type Destination } from './drain-destination.js';
import { octetFrame, syslogMessage } from './syslog-frame.js';

const CONNECT_TIMEOUT_MS = 15_000;
const WRITE_TIMEOUT_MS = 15_000;

/**
 * A syslog drain: RFC 5424 messages framed by RFC 6587 octet counting on one TCP connection (TLS
 * for `syslog+tls://`), opened at the first batch and again after it fails. The drain's token is
 * the messages' HOSTNAME, as Heroku writes it into syslog drains, so a receiver shared by several
 * apps tells them apart.
 */
export class SyslogTransport implements DrainTransport {
  #socket: Socket | undefined;

  constructor(
    private readonly dest: Destination,
    private readonly token: string,
    private readonly allow: readonly string[],
  ) {}

  async send(batch: readonly LogLine[]): Promise<void> {
    const socket = this.#socket ?? (await this.#connect());
    const frames = batch.map((l) => octetFrame(syslogMessage(l, this.token))).join('');
    try {
      await new Promise<void>((resolve, reject) => {
        // A receiver that stops reading fills the socket's buffer: the write never completes.
        const timer = setTimeout(() => reject(new Error(`the receiver took nothing for ${WRITE_TIMEOUT_MS / 1000} s`)), WRITE_TIMEOUT_MS);
        const failed = (err: Error): void => reject(err);
        socket.once('error', failed);
        socket.write(frames, (err) => {
          clearTimeout(timer);
          socket.off('error', failed);
          if (err) reject(err);
          else resolve();
        });
      });
    } catch (err) {
      this.close();
      throw err;
    }
  }

  async #connect(): Promise<Socket> {
    const address = await resolveDestination(this.dest, this.allow);
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s =
        this.dest.scheme === 'syslog+tls'
          ? tlsConnect({ host: address, port: this.dest.port, ...(isIP(this.dest.host) === 0 ? { servername: this.dest.host } : {}) }, () => resolve(s))
          : netConnect({ host: address, port: this.dest.port }, () => resolve(s));
      s.setTimeout(CONNECT_TIMEOUT_MS, () => s.destroy(new Error(`could not connect in ${CONNECT_TIMEOUT_MS / 1000} s`)));
      s.once('error', reject);
    });
    socket.setTimeout(0);
    // Kept for the connection's life: an error between batches only ends it; the next batch reconnects.
    socket.on('error', () => this.#forget(socket));
    socket.on('close', () => this.#forget(socket));
    // A receiver may answer (RFC 5425 allows nothing back, some do anyway): read and drop it.
    socket.resume();
    this.#socket = socket;
    return socket;
  }

  #forget(socket: Socket): void {
    if (this.#socket === socket) this.#socket = undefined;
  }

  close(): void {
    this.#socket?.destroy();
    this.#socket = undefined;
  }
}
