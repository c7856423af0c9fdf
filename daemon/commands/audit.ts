import { keyHasApp } from '../access/access-policy.js';
import { RackError } from '../rack-error.js';
import { table, timestamp, type Command } from './command.js';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/** Who changed what, from where: deploys, config, rollbacks, scale, keys, tokens, domains, destroys. */
export const auditCommands: Command[] = [
  {
    name: 'audit',
    // An admin reads it all; an app key reads its own apps' entries (it asks with -a).
    access: 'checked-by-command',
    usage: 'audit [-a APP] [-n COUNT] [--json]',
    example: 'audit -a myapp -n 20',
    summary: 'list recent changes: who, from where, what, when (newest first)',
    app: 'optional',
    json: true,
    options: { num: { type: 'string', short: 'n' } },
    args: { min: 0, max: 0 },
    async run(ctx) {
      const app = ctx.app === '' ? undefined : ctx.app;
      const { principal } = ctx;
      if (principal.role !== 'admin') {
        if (app === undefined) throw new RackError('forbidden', `${principal.kind} "${principal.name}" may read the audit log of its apps only: add -a APP (API: ?app=APP)`);
        if (principal.role !== 'app' || !keyHasApp(principal, app)) {
          throw new RackError('forbidden', `${principal.kind} "${principal.name}" may not run audit on ${app}`);
        }
      }
      const n = typeof ctx.flags['num'] === 'string' ? Number(ctx.flags['num']) : DEFAULT_LIMIT;
      if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) throw new RackError('bad_argument', `-n takes a count from 1 to ${MAX_LIMIT}`);
      const entries = await ctx.services.audit.list({ ...(app ? { app } : {}), limit: n });
      if (ctx.flags['json']) return ctx.printJson(entries);
      if (entries.length === 0) return ctx.print('no changes recorded yet');
      const rows = entries.map((e) => [
        timestamp(e.time),
        `${e.actor.kind} ${e.actor.name}`,
        `${e.via} ${e.address}`,
        e.app ?? '-',
        e.action,
        e.outcome,
        e.detail,
      ]);
      for (const line of table([['TIME', 'BY', 'FROM', 'APP', 'ACTION', 'OUTCOME', 'DETAIL'], ...rows])) ctx.print(line);
    },
  },
];
