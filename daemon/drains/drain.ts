import type { Logger } from '../log.js';
import type { LogLine } from '../logs/log-hub.js';

/** How a batch reaches a receiver: one HTTPS POST, or frames on a syslog connection. */
export interface DrainTransport {
  send(batch: readonly LogLine[]): Promise<void>;
  /** Ends what is open (a connection, a request in flight); a send under way then fails. */
  close(): void;
}

/** What `drains` shows of a drain's delivery since rackd started. */
export interface DrainStats {
  sent: number;
  dropped: number;
  lastError?: string;
  lastErrorAt?: string;
  lastSentAt?: string;
}

export interface DrainLimits {
  /** Lines sent in one request (Logplex sends batches too). */
  maxBatch: number;
  /** How long a batch waits to fill before it goes anyway. */
  maxWaitMs: number;
  /** Lines held for a receiver that is slow or away; past it the oldest are dropped and counted. */
  capacity: number;
  /** Tries of one batch before it is dropped (counted) and the next one goes. */
  attempts: number;
  /** The first retry's wait; each later one doubles, up to `maxBackoffMs`. */
  backoffMs: number;
  maxBackoffMs: number;
}

export const DRAIN_LIMITS: DrainLimits = { maxBatch: 500, maxWaitMs: 1000, capacity: 10_000, attempts: 6, backoffMs: 500, maxBackoffMs: 30_000 };

/**
 * One drain's delivery. Lines are pushed from the LogHub's emit, so `push` only appends to a
 * bounded buffer and returns: a receiver that is slow, refuses or never answers costs the app, the
 * router and rackd nothing but the buffer's bound, and what falls past it is counted as dropped.
 * One loop per drain takes batches off the buffer and sends them one at a time, in order.
 */
export class Drain {
  // A queue as an array and a head index: shifting 10,000 lines one by one would be quadratic.
  #lines: LogLine[] = [];
  #head = 0;
  readonly #stats: DrainStats = { sent: 0, dropped: 0 };
  #stopped = false;
  #stop!: () => void;
  /** Settles at stop: a send a receiver holds open is not waited for (close() should end it anyway). */
  readonly #stopping = new Promise<'stopped'>((resolve) => (this.#stop = () => resolve('stopped')));
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;

  constructor(
    readonly id: string,
    private readonly transport: DrainTransport,
    private readonly log: Logger,
    private readonly limits: DrainLimits = DRAIN_LIMITS,
  ) {}

  get stats(): DrainStats {
    return { ...this.#stats };
  }

  get #held(): number {
    return this.#lines.length - this.#head;
  }

  push(line: LogLine): void {
    if (this.#stopped) return;
    if (this.#held >= this.limits.capacity) {
      this.#head++;
      this.#stats.dropped++;
    }
    this.#lines.push(line);
    if (this.#head > 4096 && this.#head * 2 > this.#lines.length) {
      this.#lines = this.#lines.slice(this.#head);
      this.#head = 0;
    }
    if (this.#held >= this.limits.maxBatch || this.#held === 1) this.#wake?.();
  }

  start(): void {
    this.#loop = this.#run().catch((err: unknown) => this.log.error({ drain: this.id, err: String(err) }, 'drain: delivery loop ended'));
  }

  /** Stops delivering; what is held is dropped (a drain is a copy of the logs, not their store). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stop();
    this.#wake?.();
    this.transport.close();
    await this.#loop;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      if (this.#held === 0) await this.#sleep(undefined);
      // A batch waits to fill for at most maxWaitMs: few requests when busy, little delay when quiet.
      if (!this.#stopped && this.#held > 0 && this.#held < this.limits.maxBatch) await this.#sleep(this.limits.maxWaitMs, true);
      if (this.#stopped || this.#held === 0) continue;
      const batch = this.#lines.slice(this.#head, this.#head + this.limits.maxBatch);
      this.#head += batch.length;
      await this.#deliver(batch);
    }
  }

  async #deliver(batch: LogLine[]): Promise<void> {
    for (let attempt = 1; !this.#stopped; attempt++) {
      try {
        if ((await Promise.race([this.transport.send(batch).then(() => 'sent' as const), this.#stopping])) === 'stopped') return;
        this.#stats.sent += batch.length;
        this.#stats.lastSentAt = new Date().toISOString();
        return;
      } catch (err) {
        this.#stats.lastError = err instanceof Error ? err.message.slice(0, 300) : String(err).slice(0, 300);
        this.#stats.lastErrorAt = new Date().toISOString();
        if (attempt >= this.limits.attempts) {
          this.#stats.dropped += batch.length;
          this.log.warn({ drain: this.id, lines: batch.length, err: this.#stats.lastError }, 'drain: batch dropped after its retries');
          return;
        }
        await this.#sleep(Math.min(this.limits.backoffMs * 2 ** (attempt - 1), this.limits.maxBackoffMs), false);
      }
    }
  }

  /**
   * Waits `ms` (forever when undefined), or until stop; with `untilFull`, also until a batch is
   * full. New lines during a backoff do not cut it short.
   */
  #sleep(ms: number | undefined, untilFull = true): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      function done(): void {
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        if (this.#stopped || (untilFull && (ms === undefined || this.#held >= this.limits.maxBatch))) {
          this.#wake = undefined;
          done();
        }
      };
    });
  }
}
