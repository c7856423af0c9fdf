import { RackError } from '../rack-error.js';
import type { Attachment } from '../store/records.js';
import type { ConfigVars } from './config-vars.js';

/**
 * Add-on variables live in a release's config like the user's own, and each release names the
 * attachments that own them. Two rules follow:
 * - the user's config commands never change an add-on's keys (detach does);
 * - a rollback or promotion takes the target's code and the user's config of then, but the add-ons
 *   attached now: it never points an app back at a detached database, nor drops one attached since.
 */

/** Throws when a user change (config:set/unset) touched a key an attached add-on owns. */
export function assertAddonKeysKept(before: ConfigVars, after: ConfigVars, attachments: Attachment[]): void {
  for (const a of attachments) {
    for (const key of a.keys) {
      if (before[key] !== (Object.hasOwn(after, key) ? after[key] : undefined)) {
        throw new RackError('bad_argument', `${key} is set by add-on ${a.addon}; run addons:detach ${a.addon} to remove it`);
      }
    }
  }
}

/**
 * The config a rollback or promotion releases: the target's, without the add-on keys it had, with
 * the keys of the add-ons attached now (their values from the current config).
 */
export function rebaseAttachments(
  target: { config: ConfigVars; addons?: Attachment[] },
  current: { config: ConfigVars; addons: Attachment[] },
): ConfigVars {
  const config = new Map(Object.entries(target.config));
  for (const a of target.addons ?? []) for (const key of a.keys) config.delete(key);
  for (const a of current.addons) for (const key of a.keys) if (Object.hasOwn(current.config, key)) config.set(key, current.config[key]!);
  return Object.fromEntries(config);
}

/** Whether two attachment lists attach the same add-ons under the same aliases. */
export function sameAttachments(a: Attachment[] | undefined, b: Attachment[] | undefined): boolean {
  const words = (list: Attachment[] | undefined) => (list ?? []).map((x) => `${x.addon}=${x.alias}`).sort().join(' ');
  return words(a) === words(b);
}
