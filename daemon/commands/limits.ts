import { cpus } from 'node:os';
import { RackError } from '../rack-error.js';
import { formatLimits, parseLimitWords } from '../runtime/isolation.js';
import { textOutput } from '../user-output.js';
import type { Command } from './command.js';

const TYPE = /^[A-Za-z0-9_-]{1,30}$/;

/** `ps:limit`: memory, CPU, process count and disk per process type, kept with the formation. */
export const limitCommands: Command[] = [
  {
    name: 'ps:limit',
    access: 'member',
    usage: 'ps:limit TYPE memory=512m cpu=1|shared pids=256 disk=2g [-a APP]',
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
      const now = await ctx.services.pipeline.limit({ app: ctx.app, type, limits }, textOutput(ctx.print));
      ctx.result({ type, limits: now });
      const disk = now.diskMb ?? diskDefaultMb(ctx.services.config.diskLimit);
      ctx.print(`-----> ${type} processes of ${ctx.app} run with ${formatLimits({ ...now, ...(disk ? { diskMb: disk } : {}) })}`);
    },
  },
];

function diskDefaultMb(bytes: number | undefined): number | undefined {
  return bytes === undefined ? undefined : Math.round(bytes / 1024 ** 2);
}
