import { randomBytes } from 'node:crypto';
import { deployLines } from '../deploy-lines.js';
import type { LogHub, LogLine } from '../logs/log-hub.js';
import type { Store } from '../store/store.js';

/** What a page hears on its stream. */
export type ConsoleEvent =
  /** A part of the app changed: lists showing it fetch themselves again. */
  | { type: 'changed'; what: 'releases' | 'builds' | 'config' | 'processes' | 'domains' | 'ledger' | 'repo' | 'pipelines' | 'addons' }
  /** A user line of a console action (rollout, build) in progress. */
  | { type: 'line'; action: string; text: string }
  /** A console action ended. */
  | { type: 'done'; action: string; ok: boolean; message: string }
  /** A process or router line. */
  | { type: 'log'; line: LogLine }
  /** A line of a push in progress (made anywhere: git over ssh or HTTP), or its end. */
  | { type: 'deploy-line'; push: string; text: string }
  | { type: 'deploy-done'; push: string; ok: boolean };

export interface NumberedEvent {
  id: string;
  event: ConsoleEvent;
}

/** The Rack page's channel: rack's own updates and ledger. Not an app name (those start with a letter). */
export const RACK_CHANNEL = '-rack';

/**
 * A principal's Pipelines page channel: only its own promotions' lines, since a pipeline's apps
 * and their output are not everyone's to see. Nothing is watched on it (no app, no ledger).
 */
export const pipelinesChannel = (p: { kind: string; name: string }) => `-pipelines/${p.kind}/${p.name}`;

const RING = 500;
const WATCH_MS = 1000;
/**
 * How long a channel is kept once nobody listens: a page whose stream is cut and opened again, or
 * one rendered whose stream has not opened yet, is given what happened meanwhile (an action's lines
 * and outcome among them) instead of losing it.
 */
const LINGER_MS = 60_000;

interface AppChannel {
  seq: number;
  ring: { seq: number; event: ConsoleEvent }[];
  listeners: Set<(e: NumberedEvent) => void>;
  stopLogs: () => void;
  timer: NodeJS.Timeout;
  /** Set while nobody listens: closes the channel when it fires. */
  idle: NodeJS.Timeout | undefined;
  seen: string;
  lastBuild: number;
}

/**
 * Each app's live events for the console's pages, and the Rack page's (`RACK_CHANNEL`): a ring of
 * the last 500 (so a stream that reconnects with Last-Event-ID gets what it missed) and the pages
 * listening. IDs carry this rackd's boot epoch: after a restart an old ID is unknown, and the page
 * is told to reload its lists instead. Changes made elsewhere (a push, ssh) are noticed by reading
 * the app's newest release and build (or rack's newest ledger entry) from the store once a second,
 * only while such a page is open.
 */
export class ConsoleEvents {
  private readonly epoch = randomBytes(4).toString('hex');
  private readonly channels = new Map<string, AppChannel>();

  constructor(
    private readonly store: Store,
    private readonly logs: LogHub,
  ) {}

  publish(app: string, event: ConsoleEvent): void {
    const ch = this.channels.get(app);
    if (!ch) return; // nobody watches: nothing to keep
    const seq = ++ch.seq;
    ch.ring.push({ seq, event });
    if (ch.ring.length > RING) ch.ring.shift();
    const numbered = { id: `${this.epoch}.${seq}`, event };
    for (const l of ch.listeners) l(numbered);
  }

  /**
   * Listens to an app's events. `lastId` is the Last-Event-ID of a reconnecting page: what it
   * missed is replayed, or `{reset: true}` says it cannot be (the page reloads its lists).
   */
  subscribe(app: string, lastId: string | undefined, listener: (e: NumberedEvent) => void): { reset: boolean; stop: () => void } {
    const ch = this.channel(app);
    let reset = false;
    if (lastId !== undefined && lastId !== '') {
      const [epoch, rawSeq] = lastId.split('.');
      const seq = Number(rawSeq);
      const oldest = ch.ring[0]?.seq ?? ch.seq + 1;
      if (epoch !== this.epoch || !Number.isInteger(seq) || seq > ch.seq || seq < oldest - 1) reset = true;
      else for (const e of ch.ring) if (e.seq > seq) listener({ id: `${this.epoch}.${e.seq}`, event: e.event });
    }
    ch.listeners.add(listener);
    clearTimeout(ch.idle);
    ch.idle = undefined;
    return {
      reset,
      stop: () => {
        ch.listeners.delete(listener);
        if (ch.listeners.size === 0) this.linger(app, ch);
      },
    };
  }

  /**
   * The ID a page rendered now starts its stream from: all that happens after it is kept for the
   * page (LINGER_MS at least), so an action started before the stream opened still reaches it.
   */
  startId(app: string): string {
    const ch = this.channel(app);
    if (ch.listeners.size === 0) this.linger(app, ch);
    return `${this.epoch}.${ch.seq}`;
  }

  /** The ID a stream that asked for no replay starts from. */
  currentId(app: string): string {
    return `${this.epoch}.${this.channels.get(app)?.seq ?? 0}`;
  }

  stop(): void {
    for (const app of [...this.channels.keys()]) this.close(app);
  }

  private channel(app: string): AppChannel {
    let ch = this.channels.get(app);
    if (ch) return ch;
    const isApp = !app.startsWith('-');
    const watch = app === RACK_CHANNEL ? () => this.watchLedger() : isApp ? () => this.watch(app) : async () => undefined;
    const timer = setInterval(() => void watch(), WATCH_MS);
    timer.unref();
    ch = { seq: 0, ring: [], listeners: new Set(), stopLogs: () => undefined, timer, idle: undefined, seen: '', lastBuild: 0 };
    this.channels.set(app, ch);
    if (isApp) {
      const stopFollow = this.logs.follow(app, (line) => this.publish(app, { type: 'log', line }));
      const stopDeploys = deployLines.on((d) => {
        if (d.app !== app) return;
        this.publish(app, 'done' in d ? { type: 'deploy-done', push: d.push, ok: d.done.ok } : { type: 'deploy-line', push: d.push, text: d.text });
      });
      ch.stopLogs = () => {
        stopFollow();
        stopDeploys();
      };
    }
    void watch();
    return ch;
  }

  private linger(app: string, ch: AppChannel): void {
    clearTimeout(ch.idle);
    // A listener coming meanwhile clears this timer (subscribe), and so does close.
    ch.idle = setTimeout(() => this.close(app), LINGER_MS);
    ch.idle.unref();
  }

  private close(app: string): void {
    const ch = this.channels.get(app);
    if (!ch) return;
    clearInterval(ch.timer);
    clearTimeout(ch.idle);
    ch.stopLogs();
    this.channels.delete(app);
  }

  /** rack's ledger, for the Rack page: an entry opened or finished (by ssh, the API or a page) is the change. */
  private async watchLedger(): Promise<void> {
    const ch = this.channels.get(RACK_CHANNEL);
    if (!ch) return;
    try {
      const newest = await this.store.rackReleases.latest();
      const seen = JSON.stringify([newest?.id, newest?.status]);
      const first = ch.seen === '';
      if (seen === ch.seen) return;
      ch.seen = seen;
      if (!first) this.publish(RACK_CHANNEL, { type: 'changed', what: 'ledger' });
    } catch {
      // The store closing for a switch: the page polls the ledger until the next rackd answers.
    }
  }

  private async watch(app: string): Promise<void> {
    const ch = this.channels.get(app);
    if (!ch) return;
    try {
      const record = await this.store.getApp(app);
      const latest = await this.store.latestRelease(app);
      // Builds are numbered: the next one appearing, or the newest finishing, is the change.
      while (await this.store.getBuild(app, ch.lastBuild + 1)) ch.lastBuild++;
      const build = ch.lastBuild > 0 ? await this.store.getBuild(app, ch.lastBuild) : undefined;
      // A webhook delivery (or review apps switched over ssh) changes the Deploys tab.
      const link = await this.store.repos.get(app);
      const repo = [link?.url, link?.branch, link?.reviewApps, link?.lastDelivery?.id, link?.lastDelivery?.result];
      const seen = JSON.stringify([record?.currentRelease, latest?.version, latest?.status, build?.id, build?.status, record?.formation, record?.domains, repo]);
      const first = ch.seen === '';
      if (seen === ch.seen) return;
      ch.seen = seen;
      if (first) return;
      for (const what of ['repo', 'releases', 'builds', 'processes', 'domains'] as const) this.publish(app, { type: 'changed', what });
    } catch {
      // A destroyed app or a store closing: the next tick or the page's close ends the watch.
    }
  }
}
