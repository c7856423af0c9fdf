import { createdBy } from '../access/principal.js';
import { formatTimings } from '../phase-timings.js';
import { RackError } from '../rack-error.js';
import { MASKED, seesConfigValues } from '../access/config-mask.js';
import { abbreviate, diffConfig } from '../release/config-vars.js';
import { resolveFormation } from '../release/formation.js';
import { textOutput } from '../user-output.js';
import { timestamp, parseNumber, table, type Command, type CommandContext } from './command.js';
import { configRedaction } from './config-redaction.js';

async function redeploy(ctx: CommandContext, kind: 'rollback' | 'promote') {
  const target = ctx.args[0] === undefined ? undefined : parseNumber(ctx.args[0], 'v');
  const out = textOutput(ctx.print);
  const { release, previous } = await ctx.services.pipeline.redeploy({ app: ctx.app, target, keyName: createdBy(ctx.principal), kind }, out);
  const final = (await ctx.services.store.getRelease(ctx.app, release.version)) ?? release;
  ctx.result({ release: final.version, status: final.status, description: final.description, previous: previous > 0 ? previous : null });
  out.header(`${release.description}: released v${release.version}`);
  if (previous > 0) out.detail(`undo with: ssh rack releases:rollback v${previous} -a ${ctx.app}`);
}

const formatFormation = (f: Record<string, number>) => Object.entries(f).map(([t, n]) => `${t}=${n}`).join(' ') || '-';

/** Looking into one release, and rolling releases out again. */
export const releaseCommands: Command[] = [
  {
    name: 'releases:info',
    access: 'deploy',
    usage: 'releases:info vN [-a APP] [--json]',
    example: 'releases:info v3 -a myapp',
    summary: 'show a release, with its config changes against the release before it',
    app: true,
    json: true,
    args: { min: 1, max: 1 },
    async run(ctx) {
      const version = parseNumber(ctx.args[0]!, 'v');
      const { store } = ctx.services;
      const app = await store.requireApp(ctx.app);
      const release = await store.getRelease(ctx.app, version);
      if (!release) throw new RackError('no_such_release', `${ctx.app} has no release v${version}`);
      const before = version > 1 ? ((await store.getRelease(ctx.app, version - 1))?.config ?? {}) : {};
      const diff = diffConfig(before, release.config);
      const info = {
        version: release.version,
        status: release.status,
        current: release.version === app.currentRelease,
        build: release.build,
        image: release.image,
        description: release.description,
        ...(release.promotedFrom ? { promotedFrom: release.promotedFrom } : {}),
        createdBy: release.createdBy,
        createdAt: release.createdAt,
        error: release.error === null ? null : (await configRedaction(ctx))(release.error),
        processTypes: release.processTypes,
        // What runs: ps:scale changes the app's formation, not the (never rewritten) release. For
        // the current release that is the app's; for another, what it was released with.
        formation: release.version === app.currentRelease ? resolveFormation(release, app.formation) : (release.formation ?? {}),
        releasedWithFormation: release.formation ?? {},
        configKeys: Object.keys(release.config).sort(),
        configChanges: diff,
        timings: (await store.getReleaseTimings(ctx.app, version)) ?? null,
      };
      if (ctx.flags['json']) return ctx.printJson(info);
      const rows = [
        ['Release:', `v${info.version}${info.current ? ' (current)' : ''}`],
        ['Status:', info.status + (info.error ? `: ${info.error}` : '')],
        ['Build:', `b${info.build}${release.promotedFrom ? ` of ${release.promotedFrom.buildApp}` : ''} (${info.image})`],
        ...(release.promotedFrom ? [['Promoted:', `from ${release.promotedFrom.app} v${release.promotedFrom.release} (image ${release.promotedFrom.imageId.slice(0, 19)})`]] : []),
        ['Description:', info.description],
        ['By:', info.createdBy],
        ['Created:', timestamp(info.createdAt)],
        ['Processes:', Object.entries(info.processTypes).map(([t, c]) => `${t}: ${c}`).join('; ') || '-'],
        ['Formation:', formatFormation(info.formation)],
        ...(formatFormation(info.formation) === formatFormation(info.releasedWithFormation) ? [] : [['Released with:', formatFormation(info.releasedWithFormation)]]),
        ['Config:', info.configKeys.join(', ') || '-'],
        ...(info.timings ? [['Timings:', formatTimings(info.timings)]] : []),
      ];
      for (const line of table(rows)) ctx.print(line);
      // A deploy-only key sees which keys changed, not even the start of a value.
      const shown = seesConfigValues(ctx.principal) ? (k: string) => abbreviate(release.config[k]!) : () => MASKED;
      const changes = [
        ...diff.added.map((k) => `  + ${k}=${shown(k)}`),
        ...diff.changed.map((k) => `  ~ ${k}=${shown(k)}`),
        ...diff.removed.map((k) => `  - ${k}`),
      ];
      ctx.print(version > 1 ? `Config changes since v${version - 1}:` : 'Config:');
      for (const line of changes.length ? changes : ['  (none)']) ctx.print(line);
    },
  },
  {
    name: 'releases:rollback',
    access: 'member',
    usage: 'releases:rollback [vN] [-a APP]',
    example: 'releases:rollback v3 -a myapp',
    summary: 'roll back to vN (default: the previous good release) as a new release',
    app: true,
    args: { min: 0, max: 1 },
    audit: (ctx) => ({ detail: ctx.args.join(' ') }),
    run: (ctx) => redeploy(ctx, 'rollback'),
  },
  {
    name: 'releases:promote',
    access: 'member',
    usage: 'releases:promote vN [-a APP]',
    example: 'releases:promote v3 -a myapp',
    summary: 'roll out any release, forward or back, as a new release',
    app: true,
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args.join(' ') }),
    run: (ctx) => redeploy(ctx, 'promote'),
  },
];
