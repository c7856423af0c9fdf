import { redactValues, seesConfigValues } from '../access/config-mask.js';
import type { CommandContext } from './command.js';

/**
 * For a key that may not read config values (deploy-only): masks every config value the app has
 * had in free text it may read (build logs, build and release errors). Other keys read it as is.
 */
export async function configRedaction(ctx: CommandContext): Promise<(text: string) => string> {
  if (seesConfigValues(ctx.principal)) return (text) => text;
  const values: string[] = [];
  const app = await ctx.services.store.getApp(ctx.app);
  values.push(...Object.values(app?.config ?? {}));
  for (const release of await ctx.services.store.listReleases(ctx.app)) values.push(...Object.values(release.config));
  return (text) => redactValues(text, values);
}
