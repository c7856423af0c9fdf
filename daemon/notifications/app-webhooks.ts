import { randomBytes, randomUUID } from 'node:crypto';
import PQueue from 'p-queue';
import { APP_EVENT_KINDS, type AppEvent, type AppEvents } from '../app-events.js';
import { parseDestination, resolveDestination } from '../drains/drain-destination.js';
import { postTo } from '../drains/https-post.js';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import type { DeliveryRecord, WebhookRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import { SIGNATURE_HEADER, signature, webhookBody } from './webhook-payload.js';

const MAX_PER_APP = 10;
/** Deliveries waiting for one webhook; past it an event is recorded as failed at once, not queued. */
const MAX_PENDING = 100;

export interface WebhookTiming {
  attempts: number;
  backoffMs: number;
  timeoutMs: number;
}

const TIMING: WebhookTiming = { attempts: 5, backoffMs: 2000, timeoutMs: 15_000 };

/**
 * App webhooks: every event of the bus (app-events.ts) that a webhook of the app subscribed to is
 * POSTed to it as signed JSON, one at a time per webhook (in order), retried with backoff, each
 * attempt recorded for `webhooks:deliveries`. Nothing that tells an event waits for a delivery.
 */
export class AppWebhooks {
  readonly #queues = new Map<string, PQueue>();
  readonly #abort = new AbortController();
  #unsubscribe: (() => void) | undefined;

  constructor(
    private readonly store: Store,
    private readonly events: AppEvents,
    private readonly allow: readonly string[],
    private readonly log: Logger,
    private readonly timing: WebhookTiming = TIMING,
  ) {}

  start(): void {
    this.#unsubscribe = this.events.on((e) => {
      this.#dispatch(e).catch((err: unknown) => this.log.warn({ app: e.app, err: String(err) }, 'webhooks: could not queue an event'));
    });
  }

  /** No new deliveries; those under way are cut off (they stay `retrying` in the history). */
  async stop(): Promise<void> {
    this.#unsubscribe?.();
    this.#abort.abort();
    await Promise.all([...this.#queues.values()].map((q) => (q.clear(), q.onIdle())));
  }

  async add(req: { app: string; url: string; events: string[]; secret?: string; createdBy: string }): Promise<WebhookRecord> {
    const dest = parseDestination(req.url, ['https', 'http']);
    await resolveDestination(dest, this.allow);
    const unknown = req.events.filter((e) => !(APP_EVENT_KINDS as readonly string[]).includes(e));
    if (unknown.length > 0) throw new RackError('bad_argument', `unknown event ${JSON.stringify(unknown[0]!.slice(0, 30))}; events are ${APP_EVENT_KINDS.join(', ')}`);
    const record: WebhookRecord = {
      id: randomUUID(),
      app: req.app,
      url: req.url,
      events: req.events.length > 0 ? [...new Set(req.events)] : [...APP_EVENT_KINDS],
      secret: req.secret ?? randomBytes(32).toString('hex'),
      createdAt: new Date().toISOString(),
      createdBy: req.createdBy,
    };
    await this.store.webhooks.add(record, (existing) => {
      if (existing.length >= MAX_PER_APP) throw new RackError('bad_argument', `${req.app} has ${MAX_PER_APP} webhooks, the most an app may have; remove one first`);
    });
    return record;
  }

  async remove(app: string, id: string): Promise<WebhookRecord> {
    const record = (await this.store.webhooks.list(app)).find((h) => h.id === id || h.url === id);
    if (!record) throw new RackError('no_such_webhook', `${app} has no webhook ${JSON.stringify(id.slice(0, 80))} (webhooks lists them)`);
    await this.store.webhooks.remove(record);
    return record;
  }

  list(app: string): Promise<WebhookRecord[]> {
    return this.store.webhooks.list(app);
  }

  deliveries(app: string, limit: number): Promise<DeliveryRecord[]> {
    return this.store.webhooks.listDeliveries(app, limit);
  }

  async #dispatch(e: AppEvent): Promise<void> {
    if (this.#abort.signal.aborted) return;
    for (const hook of await this.store.webhooks.list(e.app)) {
      if (!hook.events.includes(e.kind)) continue;
      let queue = this.#queues.get(hook.id);
      if (!queue) {
        queue = new PQueue({ concurrency: 1 });
        this.#queues.set(hook.id, queue);
      }
      const now = new Date().toISOString();
      const base = { id: randomUUID(), app: e.app, webhook: hook.id, event: e.kind, action: e.action, attempts: 0, createdAt: now, updatedAt: now };
      if (queue.size >= MAX_PENDING) {
        await this.store.webhooks.startDelivery({ ...base, status: 'failed', lastAnswer: `not sent: ${MAX_PENDING} deliveries were waiting for this webhook` });
        continue;
      }
      const delivery = await this.store.webhooks.startDelivery({ ...base, status: 'pending' });
      queue.add(() => this.#deliver(hook, e, delivery)).catch((err: unknown) => this.log.warn({ app: e.app, webhook: hook.id, err: String(err) }, 'webhooks: delivery failed'));
    }
  }

  async #deliver(hook: WebhookRecord, e: AppEvent, delivery: DeliveryRecord): Promise<void> {
    const dest = parseDestination(hook.url, ['https', 'http']);
    for (let attempt = 1; attempt <= this.timing.attempts && !this.#abort.signal.aborted; attempt++) {
      const body = webhookBody(e, { webhook: hook.id, delivery: delivery.id, attempt });
      let ok = false;
      try {
        const address = await resolveDestination(dest, this.allow);
        const answer = await postTo(dest, address, body, {
          'Content-Type': 'application/json',
          'User-Agent': 'rack-webhooks/1',
          [SIGNATURE_HEADER]: signature(hook.secret, body),
          'Rack-Webhook-Delivery': delivery.id,
          'Rack-Webhook-Event': e.kind,
        }, { timeoutMs: this.timing.timeoutMs, signal: this.#abort.signal });
        ok = answer.status >= 200 && answer.status <= 299;
        delivery.lastCode = answer.status;
        delivery.lastAnswer = answer.body.slice(0, 500);
      } catch (err) {
        delete delivery.lastCode;
        delivery.lastAnswer = (err instanceof Error ? err.message : String(err)).slice(0, 500);
      }
      delivery.attempts = attempt;
      delivery.updatedAt = new Date().toISOString();
      delivery.status = ok ? 'succeeded' : attempt >= this.timing.attempts ? 'failed' : 'retrying';
      await this.store.webhooks.updateDelivery(delivery);
      if (ok || delivery.status === 'failed') return;
      await sleep(this.timing.backoffMs * 2 ** (attempt - 1), this.#abort.signal);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
