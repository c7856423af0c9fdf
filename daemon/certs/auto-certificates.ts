import PQueue from 'p-queue';
import type { RackConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { RouterClient } from '../router/router-client.js';
import { CONTROL_PLANE_APP } from '../router/upstream.js';
import type { CertRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { CertificateIssuer } from './acme-issuer.js';
import { checkBundle, type CertificateInfo } from './certificate-check.js';
import type { Certificates } from './certificates.js';

/**
 * The longest rack goes without looking at every automatic certificate. It also wakes when the
 * earliest one is due, so a short-lived certificate renews on time, and orders at once on
 * certs:auto on and domains:add.
 */
const SWEEP_MS = 10 * 60_000;
/** A certificate due sooner than this after a sweep is looked at this much later: no busy loop. */
const MIN_WAKE_MS = 1_000;
/** An order that has not finished by then has failed (its queue must move on). */
const ORDER_DEADLINE_MS = 5 * 60_000;
const BACKOFF_FIRST_MS = 60_000;
const BACKOFF_MAX_MS = 24 * 60 * 60_000;

/** Renew once a third of the lifetime is left (Let's Encrypt's advice; 30 of 90 days, 15 of 45). */
export function renewalTime(cert: Pick<CertificateInfo, 'notBefore' | 'notAfter'>): Date {
  const from = Date.parse(cert.notBefore);
  const to = Date.parse(cert.notAfter);
  return new Date(to - (to - from) / 3);
}

/** 1 min, 2, 4, … up to a day; a CA's rate limit gets an hour at least. */
export function backoffMs(failures: number, rateLimited: boolean): number {
  const ms = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.max(0, failures - 1));
  return rateLimited ? Math.max(ms, 60 * 60_000) : ms;
}

const isRateLimit = (message: string): boolean => /rate.?limit|too many/i.test(message);

/** One line, short enough for a table cell and a log line. */
function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s+/g, ' ').trim().slice(0, 300) || 'unknown error';
}

/**
 * Keeps an ACME certificate on every host of every app with certs:auto on (and on rack's own host
 * with RACK_CONSOLE_ACME=on): orders what is missing, renews what is due, backs off per host after
 * a failure, and leaves a hand-added certificate alone. Orders run one at a time: a slow CA delays
 * the next host, it never piles orders on top of each other.
 */
export class AutoCertificates {
  readonly #queue = new PQueue({ concurrency: 1 });
  readonly #queued = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(
    private readonly config: RackConfig,
    private readonly store: Store,
    private readonly certificates: Certificates,
    private readonly issuer: CertificateIssuer,
    private readonly router: RouterClient,
    private readonly log: Logger,
  ) {}

  start(): void {
    void this.sweep();
  }

  /** Waits for the order under way, if any; those queued behind it are dropped. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#queue.clear();
    await this.#queue.onIdle();
  }

  /** Resolves once nothing is ordering (tests and certs:auto's caller wait on it). */
  idle(): Promise<void> {
    return this.#queue.onIdle();
  }

  /** Looks at every host that should have an automatic certificate and orders those that are due. */
  async sweep(): Promise<void> {
    let wake = Date.now() + SWEEP_MS;
    try {
      const apps = (await this.store.listApps()).filter((a) => a.https?.auto === true).map((a) => a.name);
      if (this.config.consoleAcme) apps.push(CONTROL_PLANE_APP);
      for (const app of apps) {
        await this.check(app);
        for (const host of await this.certificates.hostsOf(app)) {
          const due = this.#dueAt(await this.store.certs.get(host));
          if (due !== undefined) wake = Math.min(wake, due);
        }
      }
    } catch (err) {
      this.log.error({ err }, 'certs: sweep failed');
    }
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.sweep(), Math.max(MIN_WAKE_MS, wake - Date.now()));
    this.#timer.unref();
  }

  /** When the host's certificate next needs an order; undefined for one rack does not order. */
  #dueAt(record: CertRecord | undefined): number | undefined {
    if (record?.source === 'manual') return undefined;
    const renew = record?.certificate === undefined ? Date.now() : renewalTime(record.certificate).getTime();
    const next = record?.acme?.nextAttemptAt === undefined ? 0 : Date.parse(record.acme.nextAttemptAt);
    return Math.max(renew, next);
  }

  /** Orders, in the background, each of the app's hosts whose certificate is missing or due. */
  async check(app: string, force = false): Promise<string[]> {
    const due: string[] = [];
    for (const host of await this.certificates.hostsOf(app)) {
      const record = await this.store.certs.get(host);
      if (!force && !this.#isDue(record)) continue;
      if (record?.source === 'manual') continue;
      due.push(host);
      this.#enqueue(host);
    }
    return due;
  }

  #isDue(record: CertRecord | undefined): boolean {
    const due = this.#dueAt(record);
    return due !== undefined && due <= Date.now();
  }

  #enqueue(host: string): void {
    if (this.#queued.has(host) || this.#stopped) return;
    this.#queued.add(host);
    void this.#queue.add(async () => {
      try {
        await this.#order(host);
      } finally {
        this.#queued.delete(host);
      }
      // The new certificate (or backoff) moves the next wake-up.
      if (this.#queue.size === 0 && !this.#stopped) void this.sweep();
    });
  }

  async #order(host: string): Promise<void> {
    // Looked up again: the host may have left its app, or the app turned certs:auto off, while this waited.
    const app = await this.certificates.ownerOf(host);
    if (app === undefined) return;
    const record = await this.store.certs.get(host);
    if (record?.source === 'manual') return;
    const started = new Date().toISOString();
    this.log.info({ host, app, directory: this.config.acmeDirectory }, 'certs: ordering a certificate');
    const tokens = new Set<string>();
    let deadline: NodeJS.Timeout | undefined;
    try {
      const issued = await Promise.race([
        this.issuer.issue(host, {
          set: (token, forHost, keyAuthorization) => {
            // The CA asks only for what was ordered; anything else is not ours to answer.
            if (forHost !== host) throw new Error(`the CA asked to validate ${forHost}, which was not ordered`);
            tokens.add(token);
            return this.router.setChallenge(token, forHost, keyAuthorization);
          },
          remove: (token) => {
            tokens.delete(token);
            return this.router.removeChallenge(token);
          },
        }),
        new Promise<never>((_, reject) => {
          deadline = setTimeout(() => reject(new Error(`no certificate within ${ORDER_DEADLINE_MS / 60_000} minutes`)), ORDER_DEADLINE_MS);
        }),
      ]);
      const bundle = checkBundle(`${issued.chainPem}\n${issued.keyPem}`, host);
      await this.certificates.install(host, app, bundle, 'acme');
    } catch (err) {
      const message = oneLine(err);
      const failures = (record?.acme?.failures ?? 0) + 1;
      const next = new Date(Date.now() + backoffMs(failures, isRateLimit(message))).toISOString();
      await this.store.certs.update(host, (current) => ({
        host,
        app,
        source: 'acme',
        ...(current?.certificate === undefined ? {} : { certificate: current.certificate }),
        acme: { failures, lastError: message, lastAttemptAt: started, nextAttemptAt: next },
        updatedAt: new Date().toISOString(),
      }));
      this.log.warn({ host, app, failures, next, err: message }, 'certs: order failed');
      this.certificates.note(app, `certificate order for ${host} failed (${failures} in a row; next try ${next}): ${message}`);
    } finally {
      clearTimeout(deadline);
      for (const token of tokens) await this.router.removeChallenge(token).catch(() => undefined);
    }
  }
}
