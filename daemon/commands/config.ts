import { createdBy } from '../access/principal.js';
import { RackError } from '../rack-error.js';
import { assertConfigFits, assertConfigKey, configValue, diffConfig, parseAssignments } from '../release/config-vars.js';
import { textOutput } from '../user-output.js';
import type { Command, CommandContext } from './command.js';

const noDeploy = { 'no-deploy': { type: 'boolean' as const } };

const currentConfig = (ctx: CommandContext) => ctx.services.pipeline.currentConfig(ctx.app);

async function change(ctx: CommandContext, description: string, apply: (c: Record<string, string>) => Record<string, string>) {
  const deploy = ctx.flags['no-deploy'] !== true;
  const out = textOutput(ctx.print);
  const release = await ctx.services.pipeline.changeConfig(
    { app: ctx.app, keyName: createdBy(ctx.principal), description, apply, deploy },
    out,
  );
  // The record returned was made before the rollout; its outcome is on the stored one.
  const final = release ? ((await ctx.services.store.getRelease(ctx.app, release.version)) ?? release) : null;
  ctx.result({ release: final ? final.version : null, status: final ? final.status : 'kept', description });
  if (!release) return out.header(`${description}: kept for ${ctx.app}'s first deploy`);
  if (deploy) out.header(`${description}: released v${release.version}`);
  else out.header(`${description}: recorded v${release.version}; roll it out with: releases:promote v${release.version}`);
}

/**
 * A config change whose rollout failed is not what the app has (`config` shows what serves), but
 * it must not vanish silently either: the newest failed release's changed names are told, and the
 * same `config:set` again retries it.
 */
async function tellUnapplied(ctx: CommandContext, config: Record<string, string>): Promise<void> {
  const newest = await ctx.services.store.latestRelease(ctx.app);
  if (!newest || newest.status !== 'failed') return;
  const d = diffConfig(config, newest.config);
  const names = [...d.added.map((k) => `+${k}`), ...d.changed.map((k) => `~${k}`), ...d.removed.map((k) => `-${k}`)];
  if (names.length === 0) return;
  ctx.print(` !     not applied: v${newest.version} (${newest.description}) failed: ${names.join(' ')}`);
}

async function assertHas(ctx: CommandContext, keys: string[]): Promise<void> {
  const config = await currentConfig(ctx);
  const missing = keys.filter((k) => !Object.hasOwn(config, k));
  if (missing.length > 0) throw new RackError('bad_argument', `${ctx.app} has no config var ${missing.join(', ')}`);
}

export const configCommands: Command[] = [
  {
    name: 'config',
    access: 'member',
    usage: 'config [-a APP] [--json]',
    example: 'config -a myapp',
    summary: "show an app's config vars",
    app: true,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const config = await currentConfig(ctx);
      if (ctx.flags['json']) return ctx.printJson(config);
      const keys = Object.keys(config).sort();
      if (keys.length === 0) ctx.print(`${ctx.app} has no config vars`);
      const width = Math.max(0, ...keys.map((k) => k.length));
      for (const k of keys) ctx.print(`${`${k}:`.padEnd(width + 1)}  ${config[k]}`);
      await tellUnapplied(ctx, config);
    },
  },
  {
    name: 'config:get',
    access: 'member',
    usage: 'config:get KEY [-a APP]',
    example: 'config:get DATABASE_URL -a myapp',
    summary: 'print one config value exactly (no newline added)',
    app: true,
    args: { min: 1, max: 1 },
    async run(ctx) {
      const key = assertConfigKey(ctx.args[0]!);
      const config = await currentConfig(ctx);
      const value = configValue(config, key);
      if (value === undefined) throw new RackError('bad_argument', `${ctx.app} has no config var ${key}`);
      ctx.write(value);
    },
  },
  {
    name: 'config:set',
    access: 'member',
    usage: 'config:set KEY=VALUE ... [--unset KEY ...] [-a APP] [--no-deploy]',
    example: "config:set NODE_ENV=production 'GREETING=hello world' -a myapp",
    summary: 'set (and --unset) config vars in one release, rolled out',
    app: true,
    options: { ...noDeploy, unset: { type: 'string', multiple: true } },
    args: { min: 0, max: 100 },
    // Names only: a word without `=` may be a mistyped value.
    audit: (ctx) => ({
      detail: [
        ...ctx.args.filter((a) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(a)).map((a) => a.split('=')[0]),
        ...((ctx.flags['unset'] as string[] | undefined) ?? []).map((k) => `-${k.slice(0, 100)}`),
      ].join(' '),
    }),
    async run(ctx) {
      const pairs = parseAssignments(ctx.args);
      const unset = ((ctx.flags['unset'] as string[] | undefined) ?? []).map(assertConfigKey);
      if (Object.keys(pairs).length === 0 && unset.length === 0) throw new RackError('bad_argument', 'nothing to change: give KEY=VALUE or --unset KEY');
      const both = unset.filter((k) => Object.hasOwn(pairs, k));
      if (both.length > 0) throw new RackError('bad_argument', `${both.join(', ')} is both set and unset`);
      if (unset.length > 0) await assertHas(ctx, unset);
      const words = [
        ...(Object.keys(pairs).length ? [`Set ${Object.keys(pairs).join(', ')}`] : []),
        ...(unset.length ? [`Unset ${unset.join(', ')}`] : []),
      ];
      await change(ctx, words.join('; '), (c) => {
        const before = { ...c };
        for (const k of unset) delete c[k];
        return assertConfigFits(before, { ...c, ...pairs });
      });
    },
  },
  {
    name: 'config:unset',
    access: 'member',
    usage: 'config:unset KEY ... [-a APP] [--no-deploy]',
    example: 'config:unset GREETING -a myapp',
    summary: 'remove config vars; makes a release and rolls it out',
    app: true,
    options: noDeploy,
    args: { min: 1, max: 100 },
    audit: (ctx) => ({ detail: ctx.args.join(' ') }),
    async run(ctx) {
      const keys = ctx.args.map(assertConfigKey);
      await assertHas(ctx, keys);
      await change(ctx, `Unset ${keys.join(', ')}`, (c) => {
        for (const k of keys) delete c[k];
        return c;
      });
    },
  },
];
