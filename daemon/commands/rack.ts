import type { RackBuild, RackReleaseRecord } from '../store/records.js';
import { FIRST_SCHEMA } from '../store/schema-store.js';
import { describeBuild } from '../versions/rack-build.js';
import { latestSchema } from '../versions/schema-migration.js';
import { MIGRATIONS } from '../versions/migrations.js';
import { table, timestamp, type Command, type CommandContext, type Services } from './command.js';
import { RackError } from '../rack-error.js';

/** The router process as it answers `ping`; `version` once the router reports one. */
export interface RouterInfo {
  pid: number;
  protocol: number;
  version: string | null;
  startedAt: string;
  uptimeSeconds: number;
}

/** What `rack` shows: which rack runs, on which schema and runtime, since when, with which router. */
export interface RackInfo extends RackBuild {
  /** rackd's own process. */
  pid: number;
  schema: number;
  /** The newest schema this rack reads (and migrates to at start). */
  schemaLatest: number;
  runtime: 'docker' | 'swarm';
  startedAt: string;
  uptimeSeconds: number;
  /** null when the router process does not answer (the reason in `routerError`). */
  router: RouterInfo | null;
  routerError?: string;
}

const secondsSince = (iso: string) => Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));

/** `3d 4h`, `2h 5m`, `4m 10s`, `9s`: the two largest units. */
export function formatUptime(seconds: number): string {
  const units: [string, number][] = [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]];
  const parts: string[] = [];
  let left = seconds;
  for (const [name, size] of units) {
    if (left >= size || (parts.length === 0 && size === 1)) parts.push(`${Math.floor(left / size)}${name}`);
    left %= size;
    if (parts.length === 2) break;
  }
  // A zero in second place says nothing: `2h 0m` is `2h`.
  return parts.filter((p, i) => i === 0 || !/^0\D/.test(p)).join(' ');
}

export async function rackInfo(services: Services): Promise<RackInfo> {
  const { rack, store, router, config } = services;
  const startedAt = rack.startedAt.toISOString();
  const info: RackInfo = {
    ...rack.build,
    pid: process.pid,
    schema: (await store.schema.version()) ?? FIRST_SCHEMA,
    schemaLatest: latestSchema(MIGRATIONS),
    runtime: config.runtime,
    startedAt,
    uptimeSeconds: secondsSince(startedAt),
    router: null,
  };
  try {
    // The router's own version is the other side's to add to its ping; shown once it is there.
    const id: { pid: number; protocol: number; startedAt: string; version?: unknown } = await router.ping();
    info.router = {
      pid: id.pid,
      protocol: id.protocol,
      version: typeof id.version === 'string' ? id.version : null,
      startedAt: id.startedAt,
      uptimeSeconds: secondsSince(id.startedAt),
    };
  } catch (err) {
    info.routerError = err instanceof Error ? err.message : String(err);
  }
  return info;
}

async function showRack(ctx: CommandContext): Promise<void> {
  const info = await rackInfo(ctx.services);
  if (ctx.flags['json']) return ctx.printJson(info);
  const r = info.router;
  const rows = [
    ['Commit:', info.commit],
    ['Schema:', `v${info.schema}${info.schema === info.schemaLatest ? '' : ` (this rack reads up to v${info.schemaLatest})`}`],
    ['Runtime:', info.runtime],
    ['Up:', `${formatUptime(info.uptimeSeconds)}, since ${timestamp(info.startedAt)} (rackd pid ${info.pid})`],
    r
      ? ['Router:', `pid ${r.pid}, protocol ${r.protocol}, version ${r.version ?? 'not reported'}, up ${formatUptime(r.uptimeSeconds)}`]
      : ['Router:', `not answering (${info.routerError ?? 'no reason given'})`],
  ];
  ctx.print(`rack ${info.version}`);
  for (const line of table(rows)) ctx.print(line);
}

function showCommand(name: string, summary: string): Command {
  return {
    name,
    access: 'public',
    usage: `${name} [--json]`,
    example: `${name} --json`,
    summary,
    app: false,
    json: true,
    args: { min: 0, max: 0 },
    run: showRack,
  };
}

/** A duration as the ledger shows it: `69.0s`, or `-` while under way. */
export const took = (ms: number | null) => (ms === null ? '-' : `${(ms / 1000).toFixed(1)}s`);

function releaseRow(r: RackReleaseRecord): string[] {
  const result = r.status === 'failed' && r.failedStep ? `failed at ${r.failedStep}` : r.status;
  return [`r${r.id}`, describeBuild(r), r.from ? describeBuild(r.from) : '-', result, timestamp(r.createdAt), took(r.durationMs), r.createdBy, r.description];
}

/** `fetch 1.2s, build 30.5s` */
export const phaseLine = (phases: RackReleaseRecord['phases']) => (phases?.length ? phases.map((p) => `${p.name} ${took(p.ms)}`).join(', ') : '-');

async function showRackRelease(ctx: CommandContext): Promise<void> {
  const id = parseRackRelease(ctx.args[0]!);
  const r = await ctx.services.store.rackReleases.get(id);
  if (!r) throw new RackError('no_such_release', `no rack release r${id}`);
  if (ctx.flags['json']) return ctx.printJson(r);
  const [, version, from, result, when, duration, by] = releaseRow(r);
  ctx.print(`r${r.id} ${r.kind}: ${r.description}`);
  const rows = [
    ['Version:', version!],
    ['From:', from!],
    ['Result:', result!],
    ['When:', `${when!}${r.finishedAt ? `, finished ${timestamp(r.finishedAt)}` : ''}`],
    ['Took:', duration!],
    ['By:', by!],
    ['Schema:', `v${r.schema}`],
    ['Steps:', phaseLine(r.phases)],
    ...(r.dir ? [['Install:', r.dir]] : []),
    ...(r.error ? [['Error:', r.error]] : []),
  ];
  for (const line of table(rows)) ctx.print(line);
}

/** `r3` or `3` → 3. */
function parseRackRelease(word: string): number {
  const m = /^r?([1-9][0-9]{0,8})$/.exec(word);
  if (!m) throw new RackError('bad_argument', `expected a rack release like r3, got ${JSON.stringify(word.slice(0, 20))}`);
  return Number(m[1]);
}

async function checkForUpdate(ctx: CommandContext, ref: string | undefined, from: string | undefined): Promise<void> {
  const found = await ctx.services.rack.updates.check({ ...(ref === undefined ? {} : { ref }), ...(from === undefined ? {} : { from }) }, { print: () => undefined });
  if (ctx.flags['json']) return ctx.printJson(found);
  if (found.upToDate) return ctx.print(`rack ${describeBuild(found.running)} is up to date with ${found.as}`);
  const ahead = found.ahead === null ? '' : `, ${found.ahead} commit${found.ahead === 1 ? '' : 's'} ahead of ${describeBuild(found.running)}`;
  ctx.print(`rack ${describeBuild(found.available)} is available (${found.as}${ahead}); install it with: ssh rack rack:update${ref ? ` ${ref}` : ''}${from ? ` --from ${from}` : ''}`);
}

/** rack itself: what runs (anyone with a key may ask, as `version`), and its own releases (admin). */
export const rackCommands: Command[] = [
  showCommand('rack', "show which rack runs: version, commit, schema, runtime, uptime, router"),
  showCommand('rack:info', 'the same as rack'),
  showCommand('version', 'the same as rack'),
  {
    name: 'rack:releases',
    access: 'admin',
    usage: 'rack:releases [--json]',
    example: 'rack:releases',
    summary: "list rack's own releases (installs, updates, rollbacks), newest first",
    app: false,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const releases = await ctx.services.store.rackReleases.list();
      if (ctx.flags['json']) return ctx.printJson(releases);
      if (releases.length === 0) return ctx.print('rack has no releases recorded yet');
      for (const line of table([['ID', 'VERSION', 'FROM', 'RESULT', 'WHEN', 'TOOK', 'BY', 'DESCRIPTION'], ...releases.map(releaseRow)])) ctx.print(line);
    },
  },
  {
    name: 'rack:releases:info',
    access: 'admin',
    usage: 'rack:releases:info rN [--json]',
    example: 'rack:releases:info r3',
    summary: "show one of rack's releases: its steps with their times, and where and why it failed",
    app: false,
    json: true,
    args: { min: 1, max: 1 },
    run: showRackRelease,
  },
  {
    name: 'rack:update',
    access: 'admin',
    usage: 'rack:update [REF] [--from URL] [--check] [--json]',
    example: 'rack:update --check',
    summary: "install REF (tag, branch or commit; default: the source's HEAD) beside the running rack, then switch to it; --check only says whether there is one",
    app: false,
    json: true,
    options: { from: { type: 'string' }, check: { type: 'boolean' } },
    args: { min: 0, max: 1 },
    // Audited by the update itself as it switches (rack-updates.ts): by the time the runner would
    // record it, this rackd has let go of the store. --check changes nothing and is not audited.
    async run(ctx) {
      const ref = ctx.args[0];
      const from = typeof ctx.flags['from'] === 'string' ? ctx.flags['from'] : undefined;
      if (ctx.flags['check']) return checkForUpdate(ctx, ref, from);
      await ctx.services.rack.updates.update(
        { ...(ref === undefined ? {} : { ref }), ...(from === undefined ? {} : { from }), caller: ctx.caller, ...(ctx.session ? { keep: ctx.session.stdout } : {}) },
        { print: (line) => ctx.print(line) },
      );
    },
  },
  {
    name: 'rack:rollback',
    access: 'admin',
    usage: 'rack:rollback [rN]',
    example: 'rack:rollback r3',
    summary: 'go back to rack release rN (default: the one before the running rack), the same way as an update',
    app: false,
    args: { min: 0, max: 1 },
    // Audited by the rollback itself as it switches, as rack:update is.
    async run(ctx) {
      const release = ctx.args[0] === undefined ? undefined : parseRackRelease(ctx.args[0]);
      await ctx.services.rack.updates.rollback(
        { ...(release === undefined ? {} : { release }), caller: ctx.caller, ...(ctx.session ? { keep: ctx.session.stdout } : {}) },
        { print: (line) => ctx.print(line) },
      );
    },
  },
];
