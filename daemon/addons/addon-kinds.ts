import { RackError } from '../rack-error.js';
import type { AddonKind, AddonRecord } from '../store/records.js';

/** What rack knows of each kind of backing service. The image is made locally (addon-images.ts). */
export interface KindSpec {
  kind: AddonKind;
  /** The pinned major version: the image's tag, shown in `addons:info`. */
  major: string;
  image: string;
  port: number;
  /** The variables' prefix when attached without --as. */
  defaultAlias: string;
  /** The first bytes of every backup of this kind (pg_dump's custom format, an RDB file). */
  backupMagic: string;
  backupExtension: string;
  client: string;
}

export const KINDS: Record<AddonKind, KindSpec> = {
  postgres: {
    kind: 'postgres',
    major: '15',
    image: 'rack/addon-postgres:15',
    port: 5432,
    defaultAlias: 'DATABASE',
    backupMagic: 'PGDMP',
    backupExtension: 'pgdump',
    client: 'psql',
  },
  redis: {
    kind: 'redis',
    major: '7',
    image: 'rack/addon-redis:7',
    port: 6379,
    defaultAlias: 'REDIS',
    backupMagic: 'REDIS',
    backupExtension: 'rdb',
    client: 'redis-cli',
  },
};

export function parseKind(word: string): KindSpec {
  const kind = word === 'postgresql' ? 'postgres' : word;
  if (kind !== 'postgres' && kind !== 'redis') {
    throw new RackError('bad_argument', `unknown add-on type ${JSON.stringify(word.slice(0, 40))}: rack offers postgres and redis`);
  }
  return KINDS[kind];
}

const ALIAS = /^[A-Z][A-Z0-9_]{0,39}$/;

/** `--as ANALYTICS` → ANALYTICS (variables ANALYTICS_URL, ...); `analytics` is taken as upper case. */
export function parseAlias(word: string): string {
  const alias = word.toUpperCase().replace(/_URL$/, '');
  if (!ALIAS.test(alias)) {
    throw new RackError('bad_argument', `invalid alias ${JSON.stringify(word.slice(0, 40))}: use letters, digits and _, starting with a letter (it becomes ALIAS_URL)`);
  }
  return alias;
}

/**
 * The config an attachment sets: `ALIAS_URL` and its parts. The host is the add-on's name, which
 * resolves only on the networks of the apps it is attached to.
 */
export function attachmentVars(addon: AddonRecord, alias: string): Record<string, string> {
  const spec = KINDS[addon.kind];
  const host = addon.published?.host ?? addon.name;
  const port = String(addon.published?.port ?? spec.port);
  const password = encodeURIComponent(addon.password);
  if (addon.kind === 'postgres') {
    return {
      [`${alias}_URL`]: `postgres://${addon.user}:${password}@${host}:${port}/${addon.database}`,
      [`${alias}_HOST`]: host,
      [`${alias}_PORT`]: port,
      [`${alias}_USER`]: addon.user!,
      [`${alias}_PASSWORD`]: addon.password,
      [`${alias}_NAME`]: addon.database!,
    };
  }
  return {
    [`${alias}_URL`]: `redis://default:${password}@${host}:${port}`,
    [`${alias}_HOST`]: host,
    [`${alias}_PORT`]: port,
    [`${alias}_PASSWORD`]: addon.password,
  };
}
