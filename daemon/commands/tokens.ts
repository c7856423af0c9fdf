import { newToken, parseDuration, tokenHash } from '../access/api-token.js';
import { principalLabel } from '../access/principal.js';
import { RackError } from '../rack-error.js';
import type { TokenRecord } from '../store/records.js';
import { table, timestamp, type Command } from './command.js';
import { GRANT_OPTIONS, grantAudit, grantFromFlags } from './grant-flags.js';

const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

function assertTokenName(name: string): string {
  if (!TOKEN_NAME.test(name)) {
    throw new RackError('bad_argument', `invalid token name ${JSON.stringify(name.slice(0, 40))}: use letters, digits, . _ @ -`);
  }
  return name;
}

/** What anyone may see of a token: never its hash. */
export const describeToken = (t: TokenRecord) => ({
  name: t.name,
  role: t.role,
  apps: t.apps,
  createdAt: t.createdAt,
  createdBy: t.createdBy,
  expiresAt: t.expiresAt,
  lastUsedAt: t.lastUsedAt,
});

/** API tokens: the HTTP side's keys, with the same three roles (Heroku's API keys, Convox's deploy keys). */
export const tokensCommands: Command[] = [
  {
    name: 'tokens',
    access: 'admin',
    usage: 'tokens [--json]',
    example: 'tokens',
    summary: 'list the API tokens: rights, expiry, last use',
    app: false,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const tokens = await ctx.services.store.tokens.list();
      if (ctx.flags['json']) return ctx.printJson(tokens.map(describeToken));
      if (tokens.length === 0) return ctx.print('no tokens yet: ssh rack tokens:create NAME [--app APP] [--deploy-only] [--expires 30d]');
      const now = Date.now();
      const rows = tokens.map((t) => [
        t.name,
        t.role,
        t.role === 'admin' ? '*' : t.apps.join(',') || '-',
        t.expiresAt === null ? 'never' : `${timestamp(t.expiresAt)}${Date.parse(t.expiresAt) <= now ? ' (expired)' : ''}`,
        timestamp(t.lastUsedAt),
      ]);
      for (const line of table([['NAME', 'ROLE', 'APPS', 'EXPIRES', 'LAST USED'], ...rows])) ctx.print(line);
    },
  },
  {
    name: 'tokens:create',
    access: 'admin',
    usage: 'tokens:create NAME [--app APP ...] [--deploy-only] [--expires 30d]',
    example: 'tokens:create ci --app myapp --deploy-only --expires 30d',
    summary: 'make an API token (shown once): admin, or limited to apps, or deploy-only',
    app: false,
    json: true,
    options: { ...GRANT_OPTIONS, expires: { type: 'string' } },
    args: { min: 1, max: 1 },
    audit: grantAudit,
    async run(ctx) {
      const name = assertTokenName(ctx.args[0]!);
      const { role, apps } = await grantFromFlags(ctx);
      const expires = typeof ctx.flags['expires'] === 'string' ? parseDuration(ctx.flags['expires']) : undefined;
      const token = newToken();
      const record: TokenRecord = {
        name,
        hash: tokenHash(token),
        role,
        apps,
        createdAt: new Date().toISOString(),
        createdBy: principalLabel(ctx.principal),
        expiresAt: expires === undefined ? null : new Date(Date.now() + expires).toISOString(),
        lastUsedAt: null,
      };
      await ctx.services.store.tokens.add(record);
      if (ctx.flags['json']) return ctx.printJson({ ...describeToken(record), token });
      ctx.print(`-----> Created ${record.role} token ${name}${apps.length ? ` for ${apps.join(', ')}` : ''}${record.expiresAt ? `, expires ${timestamp(record.expiresAt)}` : ''}`);
      ctx.print(`       ${token}`);
      ctx.print('       It is shown this once; rack keeps only its hash.');
    },
  },
  {
    name: 'tokens:revoke',
    access: 'admin',
    usage: 'tokens:revoke NAME',
    example: 'tokens:revoke ci',
    summary: 'revoke an API token (at once)',
    app: false,
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args[0] ?? '' }),
    async run(ctx) {
      const token = await ctx.services.store.tokens.revoke(assertTokenName(ctx.args[0]!));
      ctx.result(describeToken(token));
      ctx.print(`-----> Revoked token ${token.name}`);
    },
  },
];
