import { RackError } from '../rack-error.js';
import type { ProcessInfo } from '../runtime/docker-runtime.js';
import { formatLimits } from '../runtime/isolation.js';
import { parseDyno } from '../supervisor/dyno-plan.js';
import { textOutput } from '../user-output.js';
import { table, type Command } from './command.js';

/** Seconds since the process started (what `--json` and the API give), or null when it is not running. */
function uptime(startedAt: string | null, running: boolean): number | null {
  if (!running || startedAt === null) return null;
  return Math.max(0, Math.round((Date.now() - Date.parse(startedAt)) / 1000));
}

/** An engine's start time as ISO 8601 in milliseconds (Docker gives nanoseconds), or null when unknown. */
function isoTime(value: string): string | null {
  const ms = Date.parse(value);
  return value === '' || Number.isNaN(ms) || ms <= 0 ? null : new Date(ms).toISOString();
}

function formatUptime(s: number | null): string {
  if (s === null) return '-';
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

/**
 * Docker restarts a crashed process with growing backoff; several restarts is a crash loop. A
 * process the kernel killed for going over its memory limit says so, as Heroku's R15 does, and one
 * whose disk is full (its writes fail, it runs on).
 */
function state(p: ProcessInfo, draining: boolean): string {
  // The router has moved off it; it stops (and goes) once its requests are done.
  if (draining) return 'draining';
  if (p.running) return p.diskFull ? 'up, disk full' : 'up';
  if (!p.restarting) return 'down';
  if (p.oomKilled) return 'crashed: out of memory (R15)';
  return p.restarts >= 3 ? 'crash-loop' : 'crashed';
}

/** web.1, web.2, web.10, worker.1: by type, then by number. */
function byDyno(a: ProcessInfo, b: ProcessInfo): number {
  const [ai, bi] = [parseDyno(a.dyno)?.index ?? 0, parseDyno(b.dyno)?.index ?? 0];
  return a.type.localeCompare(b.type) || ai - bi || a.startedAt.localeCompare(b.startedAt);
}

/** TYPE or TYPE.N, checked before anything is asked of the app. */
function target(word: string | undefined): string | undefined {
  if (word === undefined) return undefined;
  if (!PROCESS.test(word)) throw new RackError('bad_argument', `expected a process type (web) or a process (web.1), got ${JSON.stringify(word.slice(0, 40))}`);
  return word;
}

const PROCESS = /^[A-Za-z0-9_-]{1,30}(?:\.[1-9]\d{0,2})?$/;

export const psCommands: Command[] = [
  {
    name: 'ps',
    access: 'member',
    usage: 'ps [-a APP] [--json]',
    example: 'ps -a myapp',
    summary: "list an app's processes: type, release, state, uptime",
    app: true,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      await ctx.services.store.requireApp(ctx.app);
      const processes = (await ctx.services.runtime.listProcesses(ctx.app)).sort(byDyno);
      // Stopped or removed outside rack: the supervisor is replacing them, maybe after a backoff.
      const replacing = new Map(ctx.services.supervisor.replacing(ctx.app).map((r) => [r.id, r]));
      const rows = processes.map((p) => ({
        name: p.dyno,
        type: p.type,
        release: p.release,
        state: replacing.get(p.id)?.state ?? state(p, ctx.services.supervisor.isDraining(p.id)),
        restarts: p.restarts,
        limits: formatLimits(p.limits),
        startedAt: isoTime(p.startedAt),
        uptime: uptime(isoTime(p.startedAt), p.running),
        ...(p.node !== undefined ? { node: p.node } : {}),
      }));
      // Removed outside rack: nothing lists it any more, but it is still being replaced.
      const listed = new Set(processes.map((p) => p.id));
      for (const r of replacing.values()) {
        if (listed.has(r.id)) continue;
        rows.push({ name: r.dyno, type: r.type, release: r.release, state: r.state, restarts: 0, limits: '-', startedAt: null, uptime: null });
      }
      if (ctx.flags['json']) return ctx.printJson(rows);
      if (rows.length === 0) return ctx.print(`${ctx.app} has no processes running`);
      // On a Swarm, where each process runs.
      const nodes = rows.some((r) => r.node !== undefined);
      const lines = rows.map((r) => [r.name, `v${r.release}`, r.state, formatUptime(r.uptime), String(r.restarts), ...(nodes ? [r.node || '-'] : []), r.limits]);
      const head = ['PROCESS', 'RELEASE', 'STATE', 'UPTIME', 'RESTARTS', ...(nodes ? ['NODE'] : []), 'LIMITS'];
      for (const line of table([head, ...lines])) ctx.print(line);
    },
  },
];

const SCALE = /^([A-Za-z0-9_-]{1,30})=(\d{1,2})$/;
const MAX_INSTANCES = 20;

psCommands.push(
  {
    name: 'ps:scale',
    access: 'member',
    usage: 'ps:scale TYPE=N ... [-a APP]',
    example: 'ps:scale web=2 worker=1 -a myapp',
    summary: 'set how many processes of each type run (20 a type, RACK_MAX_PROCESSES in all; rolled out without downtime)',
    app: true,
    args: { min: 1, max: 10 },
    audit: (ctx) => ({ detail: ctx.args.join(' ') }),
    async run(ctx) {
      // A Map, then fromEntries: assigning obj["__proto__"] would set the prototype, not a type.
      const changes = new Map<string, number>();
      for (const word of ctx.args) {
        const m = SCALE.exec(word);
        if (!m || Number(m[2]) > MAX_INSTANCES) {
          throw new RackError('bad_argument', `expected TYPE=N with N from 0 to ${MAX_INSTANCES}, got ${JSON.stringify(word.slice(0, 40))}`);
        }
        changes.set(m[1]!, Number(m[2]));
      }
      const formation = await ctx.services.processes.scale(
        {
          app: ctx.app,
          changes: Object.fromEntries(changes),
          maxProcesses: ctx.services.config.maxProcesses,
          oneOffs: ctx.services.runtime.tasks.oneOffCount(ctx.app),
          keyName: ctx.principal.name,
        },
        textOutput(ctx.print),
      );
      ctx.result({ formation });
      ctx.print(`-----> Scaled ${ctx.app} to ${Object.entries(formation).map(([t, n]) => `${t}=${n}`).join(' ')}`);
    },
  },
  {
    name: 'ps:restart',
    access: 'member',
    usage: 'ps:restart [TYPE|TYPE.N] [-a APP]',
    example: 'ps:restart web.1 -a myapp',
    summary: 'replace the processes (of one type, or one: web.1) with fresh ones of the same names, without downtime',
    app: true,
    args: { min: 0, max: 1 },
    audit: (ctx) => ({ detail: ctx.args.join(' ') }),
    async run(ctx) {
      const what = target(ctx.args[0]);
      await ctx.services.processes.restart({ app: ctx.app, type: what }, textOutput(ctx.print));
      ctx.result({ restarted: what ?? null });
      ctx.print(`-----> Restarted ${what ?? 'all processes'} of ${ctx.app}`);
    },
  },
  {
    name: 'ps:stop',
    access: 'member',
    usage: 'ps:stop TYPE|TYPE.N [-a APP]',
    example: 'ps:stop worker.2 -a myapp',
    summary: 'stop the processes of a type, or one (web.1), until the next ps:scale or release',
    app: true,
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args.join(' ') }),
    async run(ctx) {
      const what = target(ctx.args[0])!;
      const stopped = await ctx.services.processes.stop({ app: ctx.app, what }, textOutput(ctx.print));
      ctx.result({ stopped });
      ctx.print(`-----> Stopped ${stopped.join(' ') || 'nothing'} of ${ctx.app} (until the next ps:scale or release)`);
    },
  },
);
