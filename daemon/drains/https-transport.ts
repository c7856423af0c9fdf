import { Agent } from 'node:https';
import type { LogLine } from '../logs/log-hub.js';
import type { DrainTransport } from './drain.js';
import { resolveDestination, type Destination } from './drain-destination.js';
import { postTo } from './https-post.js';
import { logplexRequest, newFrameId } from './logplex-frame.js';

const ANSWER_TIMEOUT_MS = 15_000;

/**
 * An HTTPS (or HTTP) drain: each batch one POST in Logplex's format. A retried batch keeps its
 * frame ID, so a receiver that got it the first time (and whose answer was lost) can drop it.
 */
export class HttpsTransport implements DrainTransport {
  readonly #frameIds = new WeakMap<readonly LogLine[], string>();
  // One connection kept open: a busy app sends a batch a second.
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 1 });
  #abort = new AbortController();

  constructor(
    private readonly dest: Destination,
    private readonly token: string,
    private readonly allow: readonly string[],
  ) {}

  async send(batch: readonly LogLine[]): Promise<void> {
    let frameId = this.#frameIds.get(batch);
    if (frameId === undefined) {
      frameId = newFrameId();
      this.#frameIds.set(batch, frameId);
    }
    const address = await resolveDestination(this.dest, this.allow);
    const { body, headers } = logplexRequest(batch, this.token, frameId);
    const answer = await postTo(this.dest, address, body, headers, { timeoutMs: ANSWER_TIMEOUT_MS, agent: this.#agent, signal: this.#abort.signal });
    if (answer.status < 200 || answer.status > 299) throw new Error(`the receiver answered ${answer.status}`);
  }

  close(): void {
    this.#abort.abort();
    this.#abort = new AbortController();
    this.#agent.destroy();
  }
}
