import type { Socket } from 'node:net';
import type { Logger } from '../log.js';
import { readLines } from './line-reader.js';
import type { EventMessage } from './router-protocol.js';
import { encode, parseMessage, type Method, type ResponseMessage } from './router-protocol.js';

/** An error the router process answered with; `code` is `bad_request`, `save_failed` or `internal`. */
export class RouterCallError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** No answer came in time: the router process is stuck, or none could be reached or started. */
export class NoAnswer extends Error {}

const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

interface Call {
  line: string;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  /** Set for a connection's own handshake (ping, subscribe): failed, not re-sent, when it drops. */
  socket?: Socket;
  timer: NodeJS.Timeout;
}

/**
 * The calls on the control connections to the router process, as JSON lines: each gets an ID and a
 * deadline, and waits for its answer. A call made while no connection is up stays queued and goes
 * out, in the order made, on the next one (`resend`). What the router sends unasked (summaries,
 * access entries) goes to `onEvent`. Which connection is current is the client's business, not this.
 */
export class RouterCalls {
  readonly #calls = new Map<number, Call>();
  #nextId = 1;

  constructor(
    private readonly log: Logger,
    private readonly onEvent: (event: EventMessage) => void,
  ) {}

  /**
   * Sends a call on `socket` (a connection's own handshake), or on `current` and again on every
   * later connection until answered (`socket` undefined). Rejects with NoAnswer after `timeoutMs`.
   */
  send(socket: Socket | undefined, current: Socket | undefined, method: Method, params: unknown, timeoutMs: number): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#calls.delete(id);
        reject(new NoAnswer(`no answer from the router process within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const call: Call = { line: encode({ id, method, params }), resolve, reject, socket, timer };
      this.#calls.set(id, call);
      const target = socket ?? current;
      if (target !== undefined && !target.destroyed) target.write(call.line);
    });
  }

  /** Reads answers and events from a new connection; `onClose` runs once it is gone. */
  attach(socket: Socket, onClose: () => void): void {
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'router: control connection error'));
    socket.on('close', () => {
      this.#failHandshakes(socket);
      onClose();
    });
    readLines(socket, MAX_RESPONSE_BYTES, (line) => this.#onLine(line), () => this.log.error('router: answer too long, connection dropped'));
  }

  /** Sends every queued call still unanswered on the connection that is now current, in order. */
  resend(socket: Socket): void {
    // Map order is id order, so changes reach the router in the order they were made.
    for (const call of this.#calls.values()) if (call.socket === undefined) socket.write(call.line);
  }

  /** Fails every call still waiting (the client stopped). */
  rejectAll(reason: string): void {
    for (const call of this.#calls.values()) {
      clearTimeout(call.timer);
      call.reject(new Error(reason));
    }
    this.#calls.clear();
  }

  #failHandshakes(socket: Socket): void {
    for (const [id, call] of this.#calls) {
      if (call.socket !== socket) continue;
      this.#calls.delete(id);
      clearTimeout(call.timer);
      call.reject(new Error('the connection to the router process closed'));
    }
  }

  #onLine(line: string): void {
    const msg = parseMessage(line);
    if (msg === undefined || 'method' in msg) return;
    if ('event' in msg) {
      try {
        this.onEvent(msg);
      } catch (err) {
        this.log.error({ err, event: msg.event }, 'router: an event handler threw');
      }
      return;
    }
    this.#settle(msg);
  }

  #settle(msg: ResponseMessage): void {
    const call = this.#calls.get(msg.id);
    if (call === undefined) return; // timed out already
    this.#calls.delete(msg.id);
    clearTimeout(call.timer);
    if (msg.error !== undefined) call.reject(new RouterCallError(msg.error.code, msg.error.message));
    else call.resolve(msg.result);
  }
}
