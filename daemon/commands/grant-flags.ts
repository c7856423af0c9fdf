import { assertAppName } from '../app-name.js';
import { RackError } from '../rack-error.js';
import type { KeyRole } from '../store/records.js';
import type { AuditNote, Command, CommandContext } from './command.js';

/** `--app APP ... [--deploy-only]`: the rights of a new key or token. */
export const GRANT_OPTIONS: NonNullable<Command['options']> = {
  app: { type: 'string', short: 'a', multiple: true },
  'deploy-only': { type: 'boolean' },
};

/** Admin without apps; an app's with them; deploy-only for them with --deploy-only. The apps must exist. */
export async function grantFromFlags(ctx: CommandContext): Promise<{ role: KeyRole; apps: string[] }> {
  const apps = [...new Set(((ctx.flags['app'] as string[] | undefined) ?? []).map(assertAppName))];
  const deployOnly = ctx.flags['deploy-only'] === true;
  if (deployOnly && apps.length === 0) throw new RackError('bad_argument', '--deploy-only needs at least one --app APP');
  for (const app of apps) await ctx.services.store.requireApp(app);
  return { role: apps.length === 0 ? 'admin' : deployOnly ? 'deploy' : 'app', apps };
}

/** What the audit log says of a new key or token: its name and apps. */
export function grantAudit(ctx: CommandContext): AuditNote {
  return { detail: `${ctx.args[0] ?? ''} ${((ctx.flags['app'] as string[] | undefined) ?? []).join(',')}`.trim() };
}
