import type { Sublevel, Value } from './store.js';
import type { WriteOp } from './store-writer.js';

/** Where a name was moved to (`apps:rename`): what a push or command to the old name is told. */
export interface RenamedRecord {
  from: string;
  to: string;
  /** The new name's ssh remote, as `apps:info` shows it. */
  remote: string;
  at: string;
  /**
   * False until the files, images and processes followed the store to the new name: a rackd
   * that died in between finishes them at its next start (`AppRename.repair`).
   */
  settled: boolean;
}

/** The parts of the database with keys or values naming an app. */
export interface RenameSpaces {
  root: Sublevel;
  /** Sublevels keyed `APP!...` (drains, webhooks, metrics) or `PREFIX!APP...` (repos, pipeline members). */
  byApp: Sublevel[];
  repo: Sublevel;
  pipeline: Sublevel;
  /** Sublevels whose records carry the app in a field only (certificates by host, webhook deliveries, tokens, add-ons). */
  byField: Sublevel[];
}

/**
 * The new form of a record of the old app: its `app` (and the app record's `name`) say the new
 * name, and an image of rack's `rack/OLD:...` is `rack/NEW:...` (apps:rename tags every image under
 * the new name before this is written). Lists of apps (tokens, keys) get the new name in place.
 */
export function renamedValue(value: Value, from: string, to: string): Value {
  // A bare string is a name of something else (a token's hash entry), never taken for the app's.
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = { ...(value as unknown as Record<string, unknown>) };
  for (const field of ['app', 'createdFor'] as const) if (out[field] === from) out[field] = to;
  // Only the app record names itself by `name` (a token or add-on may share the app's name).
  if (out['name'] === from && 'currentRelease' in out) out['name'] = to;
  if (typeof out['image'] === 'string' && out['image'].startsWith(`rack/${from}:`)) out['image'] = `rack/${to}:${out['image'].slice(`rack/${from}:`.length)}`;
  if (Array.isArray(out['apps'])) out['apps'] = (out['apps'] as unknown[]).map((a) => (a === from ? to : a));
  return out as unknown as Value;
}

/** Moves every key from `from + rest` to `to + rest` (values renamed), on one part of the database. */
async function moveRange(db: Sublevel, root: boolean, prefixFrom: string, prefixTo: string, from: string, to: string): Promise<WriteOp<Value>[]> {
  const ops: WriteOp<Value>[] = [];
  const on = root ? {} : { sublevel: db };
  for await (const [key, value] of db.iterator({ gte: prefixFrom, lt: `${prefixFrom}\xff` })) {
    ops.push({ type: 'del', key, ...on }, { type: 'put', key: prefixTo + key.slice(prefixFrom.length), value: renamedValue(value, from, to), ...on });
  }
  return ops;
}

/**
 * Every write that moves an app's records from one name to the other, for one batch: after a crash
 * the store holds the app under exactly one of the two names. The audit log is left as it was: its
 * entries are history under the name they happened to.
 */
export async function appRenameOps(spaces: RenameSpaces, from: string, to: string): Promise<WriteOp<Value>[]> {
  const { root } = spaces;
  const ops: WriteOp<Value>[] = [];
  // `!` ends the name in each key, so `web!` never picks up `web-2!`.
  for (const space of ['build', 'buildlog', 'release', 'timings']) ops.push(...(await moveRange(root, true, `${space}!${from}!`, `${space}!${to}!`, from, to)));
  for (const space of ['app', 'counter!build', 'counter!release', 'push']) ops.push(...(await moveKey(root, true, `${space}!${from}`, `${space}!${to}`, from, to)));
  // Index entries and lists naming the app: domains (host → app), keys (apps they act on).
  for (const prefix of ['domain!', 'key!', 'renamed!']) {
    for await (const [key, value] of root.iterator({ gte: prefix, lt: `${prefix}\xff` })) {
      const next = prefix === 'renamed!' ? renamedPointer(value, from, to) : prefix === 'domain!' ? (value === from ? to : value) : renamedValue(value, from, to);
      if (JSON.stringify(next) !== JSON.stringify(value)) ops.push({ type: 'put', key, value: next });
    }
  }
  for (const db of spaces.byApp) ops.push(...(await moveRange(db, false, `${from}!`, `${to}!`, from, to)));
  for (const space of ['link', 'counter']) ops.push(...(await moveKey(spaces.repo, false, `${space}!${from}`, `${space}!${to}`, from, to)));
  for (const space of ['delivery', 'seen']) ops.push(...(await moveRange(spaces.repo, false, `${space}!${from}!`, `${space}!${to}!`, from, to)));
  ops.push(...(await moveKey(spaces.pipeline, false, `member!${from}`, `member!${to}`, from, to)));
  for (const db of spaces.byField) {
    for await (const [key, value] of db.iterator()) {
      const next = renamedValue(value, from, to);
      if (JSON.stringify(next) !== JSON.stringify(value)) ops.push({ type: 'put', key, value: next, sublevel: db });
    }
  }
  return ops;
}

/** Moves one key, when it is there. */
async function moveKey(db: Sublevel, root: boolean, keyFrom: string, keyTo: string, from: string, to: string): Promise<WriteOp<Value>[]> {
  const value = await db.get(keyFrom);
  if (value === undefined) return [];
  const on = root ? {} : { sublevel: db };
  return [{ type: 'del', key: keyFrom, ...on }, { type: 'put', key: keyTo, value: renamedValue(value, from, to), ...on }];
}

/** An older rename that pointed at the old name now points at the new one (A → B, then B → C: A says C). */
function renamedPointer(value: Value, from: string, to: string): Value {
  const record = value as unknown as RenamedRecord;
  return record.to === from ? ({ ...record, to } as unknown as Value) : value;
}
