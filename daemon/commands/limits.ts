import { cpus } from 'node:os';
import { allowed } from '../access/access-policy.js';
import { RackError } from '../rack-error.js';
import { checkCeilings, formatCeilings, formatLimits, parseLimitWords } from '../runtime/isolation.js';
import { textOutput } from '../user-output.js';
import type { Command } from './command.js';

const TYPE = /^[A-Za-z0-9_-]{1,30}$/;

/**
 * `ps:limit`: memory, CPU, process count and disk per process type, kept with the formation,
 * within the app's ceilings unless an admin sets them; `apps:limits`: those ceilings (admins).
 */
export const limitCommands: Command[] = [
  {
    name: 'ps:limit',
    access: 'member',
    usage: 'ps:limit TYPE memory=512m cpu=1|shared pids=256 disk=2g [-a APP]',
    example: 'ps:limit web memory=512m cpu=1 -a myapp',
    summary: 'set the memory, CPU cap, process and disk limits of a process type (rolled out without downtime)',
    app: true,
    args: { min: 2, max: 5 },
    audit: (ctx) => ({ detail: ctx.args.join(' ') }),
    async run(ctx) {
      const [type, ...words] = ctx.args as [string, ...string[]];
      if (!TYPE.test(type)) throw new RackError('bad_argument', `not a process type: ${JSON.stringify(type.slice(0, 40))}`);
      const limits = parseLimitWords(words);
      // Docker refuses a CPU quota above the host's count; say so before anything changes.
      if (limits.cpu && limits.cpu > cpus().length) {
        throw new RackError('bad_argument', `cpu=${limits.cpu} is more than this host's ${cpus().length} CPUs`);
      }
      // An app key owns its app, not the machine: past the ceilings only an admin goes.
      if (!allowed(ctx.principal, 'admin', ctx.app)) checkCeilings(limits, (await ctx.services.store.requireApp(ctx.app)).ceilings);
      const now = await ctx.services.processes.limit({ app: ctx.app, type, limits }, textOutput(ctx.print));
      ctx.result({ type, limits: now });
      const disk = now.diskMb ?? diskDefaultMb(ctx.services.config.diskLimit);
      ctx.print(`-----> ${type} processes of ${ctx.app} run with ${formatLimits({ ...now, ...(disk ? { diskMb: disk } : {}) })}`);
    },
  },
  {
    name: 'apps:limits',
    access: 'admin',
    usage: 'apps:limits [memory=2g cpu=2 pids=1024 disk=4g] [-a APP] [--json]',
    example: 'apps:limits memory=2g cpu=2 -a myapp',
    summary: "show or set how far the app's own keys may raise one process's limits with ps:limit",
    app: true,
    json: true,
    args: { min: 0, max: 4 },
    audit: (ctx) => ({ detail: ctx.args.join(' ') || 'shown' }),
    async run(ctx) {
      let app = await ctx.services.store.requireApp(ctx.app);
      if (ctx.args.length > 0) {
        const ceilings = parseLimitWords(ctx.args);
        if (ceilings.cpu === 0) throw new RackError('bad_argument', 'cpu=shared is no ceiling: give a number of CPUs');
        app = await ctx.services.store.setAppCeilings(ctx.app, ceilings);
      }
      if (ctx.flags['json']) return ctx.printJson({ ceilings: app.ceilings ?? {}, effective: formatCeilings(app.ceilings) });
      ctx.print(`-----> Ceilings per process of ${ctx.app}: ${formatCeilings(app.ceilings)}`);
      if (app.ceilings === undefined || Object.keys(app.ceilings).length < 4) ctx.print('       (the defaults where none is set; admins may set any limit)');
    },
  },
];

function diskDefaultMb(bytes: number | undefined): number | undefined {
  return bytes === undefined ? undefined : Math.round(bytes / 1024 ** 2);
}
