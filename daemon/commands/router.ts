import { RackError } from '../rack-error.js';
import { DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS, MIN_TIMEOUT_MS } from '../router/route-table.js';
import type { Command } from './command.js';

const USAGE = 'router:timeout [SECONDS|default] [-a APP]';

/** Whole seconds, 1..3600, or `default` (undefined). */
export function parseRouterTimeout(word: string): number | undefined {
  if (word === 'default') return undefined;
  const seconds = /^[0-9]{1,4}$/.test(word) ? Number(word) : NaN;
  if (!(seconds * 1000 >= MIN_TIMEOUT_MS && seconds * 1000 <= MAX_TIMEOUT_MS)) {
    throw new RackError('bad_argument', `the timeout is whole seconds from ${MIN_TIMEOUT_MS / 1000} to ${MAX_TIMEOUT_MS / 1000}, or default (usage: ${USAGE})`);
  }
  return seconds * 1000;
}

/** How a timeout reads in apps:info and the command's own line. */
export function describeRouterTimeout(timeoutMs: number | undefined): string {
  return timeoutMs === undefined ? `${DEFAULT_TIMEOUT_MS / 1000} s (default)` : `${timeoutMs / 1000} s`;
}

export const routerCommands: Command[] = [
  {
    name: 'router:timeout',
    access: 'member',
    usage: USAGE,
    example: 'router:timeout 60 -a myapp',
    summary: 'show or set how long the app has to start an answer before the client gets a 504 (default 30 s)',
    app: true,
    args: { min: 0, max: 1 },
    audit: (ctx) => ({ detail: ctx.args[0] ?? '' }),
    async run(ctx) {
      const word = ctx.args[0];
      if (word === undefined) {
        const app = await ctx.services.store.requireApp(ctx.app);
        ctx.result({ app: ctx.app, timeoutSeconds: (app.routerTimeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000, default: app.routerTimeoutMs === undefined });
        ctx.print(`${ctx.app}: the router waits ${describeRouterTimeout(app.routerTimeoutMs)} for an answer to start`);
        return;
      }
      const timeoutMs = parseRouterTimeout(word);
      await ctx.services.store.setRouterTimeout(ctx.app, timeoutMs);
      await ctx.services.supervisor.publish(ctx.app);
      ctx.result({ app: ctx.app, timeoutSeconds: (timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000, default: timeoutMs === undefined });
      ctx.print(`-----> Router timeout for ${ctx.app}: ${describeRouterTimeout(timeoutMs)}`);
    },
  },
];
