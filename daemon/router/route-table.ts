import type { Logger } from '../log.js';
import { maintenanceAnswer, type Maintenance } from './maintenance-page.js';
import type { RackAnswer } from './rack-answers.js';
import { CONTROL_PLANE_APP, copyUpstream, upstreamKey, type Upstream } from './upstream.js';

/**
 * What an app asked of HTTPS. `redirect`: plain requests to a host that has a certificate get a 308
 * to https (a host still waiting for its certificate keeps answering on plain HTTP). `hsts`: secure
 * answers carry Strict-Transport-Security.
 */
export interface HttpsPolicy {
  redirect: boolean;
  hsts: boolean;
}

export const PLAIN_POLICY: HttpsPolicy = Object.freeze({ redirect: false, hsts: false });

/** How long an app has to send the head of its answer once it has the request: Heroku's H12. */
export const DEFAULT_TIMEOUT_MS = 30_000;
export const MIN_TIMEOUT_MS = 1_000;
export const MAX_TIMEOUT_MS = 3_600_000;

/** What the router knows about one app: where its web processes answer. */
export class Route {
  readonly app: string;
  readonly hosts: readonly string[];
  readonly upstreams: readonly Upstream[];
  readonly https: HttpsPolicy;
  /** What the app set with `router:timeout`; undefined: the default. */
  readonly timeoutSetting: number | undefined;
  /**
   * The answer timeout in force; 0 for rack's own host, whose answers (a git push over HTTP, a
   * build's output) may start only after minutes.
   */
  readonly timeoutMs: number;
  /** `maintenance:on`: what the router answers instead of relaying (undefined: relay). */
  readonly maintenance: Maintenance | undefined;
  /** Its answer, made once per route rather than per request. */
  readonly maintenanceAnswer: RackAnswer | undefined;
  #next = 0;

  constructor(app: string, hosts: readonly string[], upstreams: readonly Upstream[], https: HttpsPolicy = PLAIN_POLICY, timeoutMs?: number, maintenance?: Maintenance) {
    this.app = app;
    this.hosts = hosts;
    this.upstreams = upstreams;
    this.https = https;
    this.timeoutSetting = timeoutMs;
    this.timeoutMs = app === CONTROL_PLANE_APP ? 0 : (timeoutMs ?? DEFAULT_TIMEOUT_MS);
    this.maintenance = maintenance;
    this.maintenanceAnswer = maintenance === undefined ? undefined : maintenanceAnswer(app, maintenance);
  }

  /** Round robin; undefined when the app has nothing running. */
  next(): Upstream | undefined {
    const n = this.upstreams.length;
    if (n === 0) return undefined;
    const u = this.upstreams[this.#next % n];
    this.#next = (this.#next + 1) % n;
    return u;
  }
}

/**
 * Lower-case host name without port or trailing dot, as set by setApp. A Host header may carry
 * any case, a port, an IPv6 literal in brackets, or the absolute-name dot; all name the same site.
 */
export function normalizeHost(header: string | undefined): string {
  if (header === undefined) return '';
  let h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    h = end === -1 ? h : h.slice(0, end + 1);
  } else {
    const colon = h.indexOf(':');
    if (colon !== -1) h = h.slice(0, colon);
  }
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

function dedupe(upstreams: readonly Upstream[]): Upstream[] {
  const seen = new Set<string>();
  const out: Upstream[] = [];
  for (const u of upstreams) {
    const key = upstreamKey(u);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(copyUpstream(u));
  }
  return out;
}

/** host → app → upstreams. Every change replaces a whole Route so readers never see half an update. */
export class RouteTable {
  readonly #byApp = new Map<string, Route>();
  readonly #byHost = new Map<string, Route>();
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  lookup(host: string): Route | undefined {
    return this.#byHost.get(host);
  }

  route(app: string): Route | undefined {
    return this.#byApp.get(app);
  }

  set(app: string, hosts: readonly string[], upstreams: readonly Upstream[], https: HttpsPolicy = PLAIN_POLICY, timeoutMs?: number, maintenance?: Maintenance): void {
    const names = [...new Set(hosts.map((h) => normalizeHost(h)).filter((h) => h !== ''))].filter((host) => {
      // rack's own host name is never an app's, whatever domains an app was given.
      const taken = app !== CONTROL_PLANE_APP && this.#byHost.get(host)?.app === CONTROL_PLANE_APP;
      if (taken) this.#logger.warn({ host, app }, "router: an app may not take rack's own host name");
      return !taken;
    });
    const route = new Route(app, names, dedupe(upstreams), { redirect: https.redirect, hsts: https.hsts }, timeoutMs, maintenance);
    this.#unlinkHosts(app);
    for (const host of names) {
      const owner = this.#byHost.get(host);
      if (owner !== undefined && owner.app !== app) {
        // Last writer wins so a domain can move between apps; the loser keeps its other names.
        this.#logger.warn({ host, from: owner.app, to: app }, 'router: host moved to another app');
        this.#replace(new Route(owner.app, owner.hosts.filter((h) => h !== host), owner.upstreams, owner.https, owner.timeoutSetting, owner.maintenance));
      }
      this.#byHost.set(host, route);
    }
    this.#byApp.set(app, route);
  }

  remove(app: string): void {
    this.#unlinkHosts(app);
    this.#byApp.delete(app);
  }

  /**
   * Every app's effective route, hosts included after any moved to other apps. Replaying these in
   * any order rebuilds this table exactly, which is why the router process persists these and not
   * the setApp calls that led here.
   */
  entries(): Route[] {
    return [...this.#byApp.values()];
  }

  /** Every upstream some app still routes to; the others' pools can be closed. */
  liveUpstreamKeys(): Set<string> {
    const keys = new Set<string>();
    for (const route of this.#byApp.values()) {
      for (const u of route.upstreams) keys.add(upstreamKey(u));
    }
    return keys;
  }

  #replace(route: Route): void {
    this.#byApp.set(route.app, route);
    for (const host of route.hosts) this.#byHost.set(host, route);
  }

  #unlinkHosts(app: string): void {
    const old = this.#byApp.get(app);
    if (old === undefined) return;
    for (const host of old.hosts) {
      if (this.#byHost.get(host)?.app === app) this.#byHost.delete(host);
    }
  }
}
