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

export interface ReviewAppsOptions {
  store: Store;
  /** The parent's config and add-ons now (the pipeline's view: its base release's). */
  parent: { currentConfig(app: string): Promise<ConfigVars>; currentAttachments(app: string): Promise<Attachment[]> };
  /** Publishes a new app's (empty) route, as `apps:create` does. */
  publish: (app: string) => Promise<void>;
  hosts: { domain: string; consoleHost: string };
  log: Logger;
}

/**
 * Review apps are apps: made on the first delivery of a pull request with the parent's config
 * (less its add-ons' variables: a review app must not write to the parent's database) plus app.json
 * `environments.review.env` of the request's head, then deployed as any push.
 */
export class ReviewApps {
  constructor(private readonly opts: ReviewAppsOptions) {}

  /** Makes `name` for `parent` from `commit` (already fetched into `repo`); false when it exists. */
  async create(parent: string, name: string, repo: string, commit: string): Promise<boolean> {
    const { store } = this.opts;
    if (await store.getApp(name)) return false;
    assertDefaultHostFree(name, { ...this.opts.hosts, apps: await store.listApps() });
    const config = await this.opts.parent.currentConfig(parent);
    for (const attachment of await this.opts.parent.currentAttachments(parent)) for (const key of attachment.keys) delete config[key];
    const review = await reviewEnv(repo, commit);
    const merged = assertConfigFits({}, { ...config, ...review });
    await store.createApp(name);
    await store.setAppConfig(name, merged);
    await this.opts.publish(name);
    this.opts.log.info({ app: name, parent, commit, reviewKeys: Object.keys(review) }, 'review app created');
    return true;
  }
}

/** app.json `environments.review.env` at the commit: `{KEY: "value"}` or Heroku's `{KEY: {value}}`. */
export async function reviewEnv(repo: string, commit: string): Promise<ConfigVars> {
  const text = await showFile(repo, commit, 'app.json', {});
  if (text === undefined) return {};
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new RackError('build_failed', 'app.json is not valid JSON', { cause: err });
  }
  const env = ((doc as { environments?: { review?: { env?: unknown } } } | null)?.environments?.review?.env ?? {}) as Record<string, unknown>;
  if (typeof env !== 'object' || env === null || Array.isArray(env)) throw new RackError('build_failed', 'app.json environments.review.env must be an object');
  const out: ConfigVars = {};
  for (const [key, raw] of Object.entries(env)) {
    const value = typeof raw === 'string' ? raw : typeof raw === 'object' && raw !== null && typeof (raw as { value?: unknown }).value === 'string' ? (raw as { value: string }).value : undefined;
    if (value === undefined) continue; // `{required: true}` and the like: nothing rack can fill in
    out[assertConfigKey(key)] = assertConfigValue(key, value);
  }
  return out;
}
