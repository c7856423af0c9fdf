import { parseAlias, parseKind, type KindSpec } from '../addons/addon-kinds.js';
import { assertNewAppName } from '../app-name.js';
import { assertDefaultHostFree } from '../domain-ownership.js';
import { showFile } from '../git/repo.js';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import { assertConfigFits, assertConfigKey, assertConfigValue, type ConfigVars } from '../release/config-vars.js';
import type { Attachment } from '../store/records.js';
import type { Store } from '../store/store.js';

/** `APP-pr-N`: the review app of pull request N; refused when the name would be too long for an app. */
export function reviewAppName(parent: string, number: number): string {
  return assertNewAppName(`${parent}-pr-${number}`);
}

/** Whether `name` is one of `parent`'s review apps. */
export function isReviewAppOf(parent: string, name: string): boolean {
  return name.startsWith(`${parent}-pr-`) && /^[1-9][0-9]*$/.test(name.slice(parent.length + 4));
}

/** An add-on app.json asks the review app to have: its kind, and the alias its variables take. */
export interface ReviewAddon {
  kind: KindSpec;
  alias: string;
}

/** What app.json says of review apps at a commit. */
export interface ReviewSettings {
  env: ConfigVars;
  addons: ReviewAddon[];
  /** `scripts.postdeploy` (or `environments.review.scripts.postdeploy`): run once after the first deploy. */
  postdeploy: string | undefined;
}

/** The add-on service as review apps need it (rackd fills it from addons/). */
export interface ReviewAddonService {
  /** Makes a new add-on of `kind` for `app` and attaches it as `alias`. */
  create(app: string, addon: ReviewAddon, createdBy: string): Promise<void>;
  /** The add-ons made for `app` (its own, to go with it). */
  ownedBy(app: string): Promise<string[]>;
  /** Removes a detached add-on, its container and its volume. */
  destroy(name: string): Promise<void>;
}

export interface ReviewAppsOptions {
  store: Store;
  /** An app's config and add-ons now (the pipeline's view: its base release's, else the app's kept for its first). */
  releases: { currentConfig(app: string): Promise<ConfigVars>; currentAttachments(app: string): Promise<Attachment[]> };
  addons: ReviewAddonService;
  /** Runs `command` as a one-off of the app's current release; resolves with its exit status. */
  postdeploy: (app: string, command: string) => Promise<number>;
  /** Publishes a new app's (empty) route, as `apps:create` does. */
  publish: (app: string) => Promise<void>;
  hosts: { domain: string; consoleHost: string };
  log: Logger;
}

/**
 * Review apps are apps: made on the first delivery of a pull request with the parent's config
 * (less its add-ons' variables: a review app must not write to the parent's database) plus app.json
 * `environments.review.env` of the request's head, with fresh add-ons of `environments.review.addons`,
 * then deployed as any push; `scripts.postdeploy` runs once after the first deploy that serves.
 */
export class ReviewApps {
  constructor(private readonly opts: ReviewAppsOptions) {}

  /**
   * Makes `name` for `parent` from `commit` (already fetched into `repo`) unless it exists, and,
   * until its first release serves, the add-ons app.json asks for that it lacks (a first deploy
   * that failed half-way is completed by the next delivery). Runs under the review app's push lock.
   */
  async prepare(parent: string, name: string, repo: string, commit: string, createdBy: string): Promise<ReviewSettings> {
    const { store } = this.opts;
    const settings = await reviewSettings(repo, commit);
    if (!(await store.getApp(name))) await this.create(parent, name, settings);
    if (await this.hasServed(name)) return settings;
    const attached = await this.opts.releases.currentAttachments(name);
    for (const addon of settings.addons) {
      if (attached.some((a) => a.alias === addon.alias)) continue;
      await this.opts.addons.create(name, addon, createdBy);
    }
    return settings;
  }

  private async create(parent: string, name: string, settings: ReviewSettings): Promise<void> {
    const { store } = this.opts;
    assertDefaultHostFree(name, { ...this.opts.hosts, apps: await store.listApps() });
    const config = await this.opts.releases.currentConfig(parent);
    for (const attachment of await this.opts.releases.currentAttachments(parent)) for (const key of attachment.keys) delete config[key];
    // The review app's own add-ons set these: a value inherited from the parent (set by hand)
    // would clash with the attachment, and would point at the parent's service.
    for (const addon of settings.addons) for (const key of Object.keys(config)) if (key.startsWith(`${addon.alias}_`)) delete config[key];
    const merged = assertConfigFits({}, { ...config, ...settings.env });
    await store.createApp(name);
    await store.setAppConfig(name, merged);
    await this.opts.publish(name);
    this.opts.log.info({ app: name, parent, reviewKeys: Object.keys(settings.env), addons: settings.addons.map((a) => a.kind.kind) }, 'review app created');
  }

  /**
   * After a deploy of `name` that serves `version`: app.json's postdeploy, when this is the app's
   * first release that served. Its output is in the app's log (`logs -a NAME`); a failure is
   * returned, not thrown: the app stays.
   */
  async afterDeploy(name: string, version: number, settings: ReviewSettings): Promise<{ postdeploy: 'none' | 'ok' | string }> {
    if (settings.postdeploy === undefined) return { postdeploy: 'none' };
    const served = (await this.opts.store.listReleases(name)).filter((r) => r.status === 'succeeded');
    if (served.length !== 1 || served[0]!.version !== version) return { postdeploy: 'none' };
    try {
      const code = await this.opts.postdeploy(name, settings.postdeploy);
      this.opts.log.info({ app: name, version, code }, 'review app postdeploy ran');
      return { postdeploy: code === 0 ? 'ok' : `exit status ${code}` };
    } catch (err) {
      const message = RackError.from(err).message;
      this.opts.log.warn({ app: name, version, err: message }, 'review app postdeploy failed');
      return { postdeploy: message };
    }
  }

  /** The add-ons made for `name`, listed before it goes (apps:destroy detaches them and forgets their maker). */
  ownedAddons(name: string): Promise<string[]> {
    return this.opts.addons.ownedBy(name);
  }

  /** Removes the add-ons a destroyed review app owned; each is tried, the first failure thrown after. */
  async destroyAddons(names: string[]): Promise<void> {
    let first: unknown;
    for (const addon of names) {
      try {
        await this.opts.addons.destroy(addon);
      } catch (err) {
        this.opts.log.error({ addon, err: String(err) }, 'could not destroy a review app\'s add-on');
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }

  private async hasServed(name: string): Promise<boolean> {
    return (await this.opts.store.listReleases(name)).some((r) => r.status === 'succeeded');
  }
}

/** app.json at the commit: `environments.review` (env, addons, scripts) over the top-level `scripts`. */
export async function reviewSettings(repo: string, commit: string): Promise<ReviewSettings> {
  const text = await showFile(repo, commit, 'app.json', {});
  if (text === undefined) return { env: {}, addons: [], postdeploy: undefined };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new RackError('build_failed', 'app.json is not valid JSON', { cause: err });
  }
  const root = (typeof doc === 'object' && doc !== null ? doc : {}) as { environments?: { review?: { env?: unknown; addons?: unknown; scripts?: unknown } }; scripts?: unknown };
  const review = root.environments?.review ?? {};
  return {
    env: reviewEnv(review.env ?? {}),
    addons: reviewAddons(review.addons ?? []),
    postdeploy: postdeployOf(review.scripts) ?? postdeployOf(root.scripts),
  };
}

/** `{KEY: "value"}` or Heroku's `{KEY: {value}}`. */
function reviewEnv(env: unknown): ConfigVars {
  if (typeof env !== 'object' || env === null || Array.isArray(env)) throw new RackError('build_failed', 'app.json environments.review.env must be an object');
  const out: ConfigVars = {};
  for (const [key, raw] of Object.entries(env)) {
    const value = typeof raw === 'string' ? raw : typeof raw === 'object' && raw !== null && typeof (raw as { value?: unknown }).value === 'string' ? (raw as { value: string }).value : undefined;
    if (value === undefined) continue; // `{required: true}` and the like: nothing rack can fill in
    out[assertConfigKey(key)] = assertConfigValue(key, value);
  }
  return out;
}

/** Heroku's add-on services under rack's kinds; a plan after `:` (`heroku-postgresql:essential-0`) says nothing here. */
const HEROKU_KINDS: Record<string, string> = { 'heroku-postgresql': 'postgres', 'heroku-redis': 'redis' };
const MAX_REVIEW_ADDONS = 4;

/** `["postgres"]`, `["heroku-postgresql:essential-0"]` or `[{"plan": "heroku-redis", "as": "CACHE"}]`. */
export function reviewAddons(list: unknown): ReviewAddon[] {
  if (!Array.isArray(list)) throw new RackError('build_failed', 'app.json environments.review.addons must be a list');
  if (list.length > MAX_REVIEW_ADDONS) throw new RackError('build_failed', `app.json asks for ${list.length} add-ons; a review app may have ${MAX_REVIEW_ADDONS}`);
  const out: ReviewAddon[] = [];
  for (const entry of list) {
    const plan = typeof entry === 'string' ? entry : typeof entry === 'object' && entry !== null ? (entry as { plan?: unknown }).plan : undefined;
    if (typeof plan !== 'string') throw new RackError('build_failed', 'each of app.json environments.review.addons is a name or {"plan": NAME}');
    const service = plan.split(':')[0]!.toLowerCase();
    const kind = parseKind(HEROKU_KINDS[service] ?? service);
    const as = typeof entry === 'object' && entry !== null ? (entry as { as?: unknown }).as : undefined;
    const alias = typeof as === 'string' ? parseAlias(as) : kind.defaultAlias;
    if (out.some((a) => a.alias === alias)) throw new RackError('build_failed', `app.json names two add-ons as ${alias}; give one another "as"`);
    out.push({ kind, alias });
  }
  return out;
}

function postdeployOf(scripts: unknown): string | undefined {
  if (typeof scripts !== 'object' || scripts === null) return undefined;
  const raw = (scripts as { postdeploy?: unknown }).postdeploy;
  const command = typeof raw === 'string' ? raw : typeof raw === 'object' && raw !== null ? (raw as { command?: unknown }).command : undefined;
  if (typeof command !== 'string' || command.trim() === '') return undefined;
  if (command.length > 4096 || command.includes('\0')) throw new RackError('build_failed', 'app.json scripts.postdeploy must be one command under 4096 characters');
  return command;
}
