import { formatLogLine, type LogLine } from '../logs/log-hub.js';
import { parseLogTime, type LogQuery } from '../logs/log-query.js';
import { RackError } from '../rack-error.js';
import type { Command } from './command.js';

const TYPE = /^[A-Za-z0-9_-]{1,30}$/;
const MAX_LINES = 99_999;
const MAX_GREP = 200;

export const logsCommands: Command[] = [
  {
    name: 'logs:router',
    access: 'member',
    usage: 'logs:router [on|off] [-a APP]',
    example: 'logs:router on -a myapp',
    summary: "show or set whether the router's per-request lines are kept for the app when nobody follows its logs",
    app: true,
    args: { min: 0, max: 1 },
    audit: (ctx) => ({ detail: ctx.args[0] ?? '' }),
    async run(ctx) {
      const word = ctx.args[0];
      const { store, logs } = ctx.services;
      if (word === undefined) {
        const on = (await store.requireApp(ctx.app)).keepRouterLines === true;
        ctx.result({ app: ctx.app, keep: on });
        return ctx.print(`${ctx.app}: the router's per-request lines are ${on ? 'kept' : 'made only while someone follows the logs or a drain takes them'}`);
      }
      if (word !== 'on' && word !== 'off') throw new RackError('bad_argument', `expected on or off, got ${JSON.stringify(word.slice(0, 20))} (usage: logs:router [on|off])`);
      await store.setKeepRouterLines(ctx.app, word === 'on');
      logs.keepRouterLines(ctx.app, word === 'on');
      ctx.result({ app: ctx.app, keep: word === 'on' });
      ctx.print(`-----> ${ctx.app}: the router's per-request lines are ${word === 'on' ? 'kept from now on' : 'made only while someone follows the logs or a drain takes them'}`);
    },
  },
  {
    name: 'logs',
    access: 'deploy',
    usage: 'logs [-n N] [-p TYPE] [--since 2h|TIME] [--until TIME] [--grep TEXT] [--json] [-t|-f] [-a APP]',
    example: 'logs -t -a myapp',
    summary: "show an app's kept process output and router access lines; -t (--tail, -f) follows until you quit",
    app: true,
    // Not `json: true`: that makes the API ask for JSON, and the API's answer stays text lines.
    options: {
      json: { type: 'boolean' },
      num: { type: 'string', short: 'n' },
      ps: { type: 'string', short: 'p' },
      tail: { type: 'boolean', short: 'f' },
      // Heroku's tail flag; parseArgs gives an option one short letter, so -t is its own.
      follow: { type: 'boolean', short: 't' },
      since: { type: 'string' },
      until: { type: 'string' },
      grep: { type: 'string' },
    },
    args: { min: 0, max: 0 },
    async run(ctx) {
      const q = logQuery(ctx.flags);
      const follow = ctx.flags['tail'] === true || ctx.flags['follow'] === true;
      if (follow && q.until !== undefined) throw new RackError('bad_argument', '-t follows new lines; it does not go with --until');
      const show = ctx.flags['json'] === true ? (l: LogLine) => ctx.print(JSON.stringify(l)) : (l: LogLine) => ctx.print(formatLogLine(l));
      await ctx.services.store.requireApp(ctx.app);
      const { logs } = ctx.services;
      // Subscribed before the history is read, so no line falls between the two; those the history
      // shows as well are not shown twice.
      let live: LogLine[] | undefined = [];
      // ssh2 emits a channel's close only after its input has been read to the end: unread, a client
      // gone (Ctrl-C) would leave this follower, and the router's lines it wants, for ever.
      if (follow) ctx.session?.stdin.resume();
      const stop = follow
        ? logs.follow(ctx.app, (line) => {
            if (!passes(line, q)) return;
            if (live) live.push(line);
            else show(line);
          })
        : () => undefined;
      try {
        const history = await logs.history(ctx.app, q);
        for (const line of history) show(line);
        if (!follow) return;
        const shown = new Set(history.map(key));
        for (const line of live) if (!shown.has(key(line))) show(line);
        live = undefined;
        ctx.following();
        await ctx.closed;
      } finally {
        stop();
      }
    },
  },
];

/** The flags as a query; `-n` is the last N matching lines: 100 by default, all (to 99,999) with --since or --until. */
export function logQuery(flags: Record<string, unknown>, nowMs = Date.now()): LogQuery {
  const raw = flags['num'] as string | undefined;
  if (raw !== undefined && !/^\d{1,5}$/.test(raw)) throw new RackError('bad_argument', `-n takes a number of lines (at most ${MAX_LINES}), got ${JSON.stringify(raw.slice(0, 20))}`);
  const type = flags['ps'] as string | undefined;
  if (type !== undefined && !TYPE.test(type)) throw new RackError('bad_argument', `invalid process type ${JSON.stringify(type.slice(0, 30))}`);
  const grep = flags['grep'] as string | undefined;
  if (grep !== undefined && (grep === '' || grep.length > MAX_GREP)) throw new RackError('bad_argument', `--grep takes a text of 1 to ${MAX_GREP} characters`);
  const since = flags['since'] === undefined ? undefined : parseLogTime('--since', flags['since'] as string, nowMs);
  const until = flags['until'] === undefined ? undefined : parseLogTime('--until', flags['until'] as string, nowMs);
  if (since !== undefined && until !== undefined && since > until) throw new RackError('bad_argument', '--since is after --until');
  const limit = raw !== undefined ? Number(raw) : since !== undefined || until !== undefined ? MAX_LINES : 100;
  return { limit, ...(since === undefined ? {} : { since }), ...(until === undefined ? {} : { until }), ...(grep === undefined ? {} : { grep }), ...(type === undefined ? {} : { type }) };
}

function passes(line: LogLine, q: LogQuery): boolean {
  return (q.type === undefined || line.type === q.type) && (q.grep === undefined || line.text.includes(q.grep));
}

function key(l: LogLine): string {
  return `${l.time} ${l.source} ${l.text}`;
}
