import { formatLogLine } from '../logs/log-hub.js';
import { RackError } from '../rack-error.js';
import type { Command } from './command.js';

const TYPE = /^[A-Za-z0-9_-]{1,30}$/;

export const logsCommands: Command[] = [
  {
    name: 'logs',
    access: 'deploy',
    usage: 'logs [-n N] [-p TYPE] [-f] [-a APP]',
    summary: "show an app's process output and router access lines; -f follows until you quit",
    app: true,
    options: {
      num: { type: 'string', short: 'n' },
      ps: { type: 'string', short: 'p' },
      tail: { type: 'boolean', short: 'f' },
    },
    args: { min: 0, max: 0 },
    async run(ctx) {
      const rawNum = (ctx.flags['num'] as string | undefined) ?? '100';
      if (!/^\d{1,5}$/.test(rawNum)) throw new RackError('bad_argument', `-n takes a number of lines (at most 99999), got ${JSON.stringify(rawNum.slice(0, 20))}`);
      const type = ctx.flags['ps'] as string | undefined;
      if (type !== undefined && !TYPE.test(type)) throw new RackError('bad_argument', `invalid process type ${JSON.stringify(type.slice(0, 30))}`);
      await ctx.services.store.requireApp(ctx.app);
      for (const line of ctx.services.logs.recent(ctx.app, Number(rawNum), type)) ctx.print(formatLogLine(line));
      if (ctx.flags['tail'] !== true) return;
      // ssh2 emits a channel's close only after its input has been read to the end: unread, a client
      // gone (Ctrl-C) would leave this follower, and the router's lines it wants, for ever.
      ctx.session?.stdin.resume();
      const stop = ctx.services.logs.follow(ctx.app, (line) => {
        if (type === undefined || line.type === type) ctx.print(formatLogLine(line));
      });
      try {
        await ctx.closed;
      } finally {
        stop();
      }
    },
  },
];
