import { parseArgs } from 'node:util';
import { authorize } from '../access/access-policy.js';
import { RackError } from '../rack-error.js';
import type { ExecRequest } from '../ssh/ssh-server.js';
import { appsCommands } from './apps.js';
import { selectApp } from './app-selection.js';
import type { Command, CommandContext, Services } from './command.js';
import { configCommands } from './config.js';
import { domainsCommands } from './domains.js';
import { historyCommands } from './history.js';
import { keysCommands } from './keys.js';
import { limitCommands } from './limits.js';
import { logsCommands } from './logs.js';
import { psCommands } from './ps.js';
import { releaseCommands } from './releases.js';

const metaCommands: Command[] = [
  {
    name: 'help',
    access: 'public',
    usage: 'help',
    summary: 'list the commands',
    app: false,
    args: { min: 0, max: 1 },
    async run(ctx) {
      ctx.print('Usage: ssh rack COMMAND [ARGS] [-a APP]');
      ctx.print('');
      const width = Math.max(...COMMANDS.map((c) => c.usage.length));
      for (const c of COMMANDS) ctx.print(`  ${c.usage.padEnd(width)}  ${c.summary}`);
      ctx.print(`  ${'run [-a APP] COMMAND...'.padEnd(width)}  run a one-off process of the current release (ssh -t for a TTY)`);
      ctx.print('');
      ctx.print('Deploy with: git push rack main');
    },
  },
  {
    name: 'version',
    access: 'public',
    usage: 'version',
    summary: "show rack's version",
    app: false,
    args: { min: 0, max: 0 },
    async run(ctx) {
      ctx.print(`rack ${ctx.services.version}`);
    },
  },
];

const COMMANDS: Command[] = [...appsCommands, ...configCommands, ...historyCommands, ...releaseCommands, ...domainsCommands, ...psCommands, ...limitCommands, ...logsCommands, ...keysCommands, ...metaCommands];
const BY_NAME = new Map(COMMANDS.map((c) => [c.name, c]));

export interface CommandIo {
  stdout(text: string): void;
  readInput(maxBytes: number): Promise<string>;
  closed: Promise<void>;
}

/** Parses one ssh command line against the command table and runs it. */
export async function runCommand(services: Services, req: Pick<ExecRequest, 'key' | 'login' | 'env'>, argv: string[], io: CommandIo): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '') throw new RackError('bad_command', 'no command given; try: ssh rack help');
  const command = BY_NAME.get(name);
  if (!command) throw new RackError('bad_command', `unknown command "${name.slice(0, 60)}"; try: ssh rack help`);

  const options = {
    ...(command.app ? { app: { type: 'string' as const, short: 'a' } } : {}),
    ...(command.json ? { json: { type: 'boolean' as const } } : {}),
    ...command.options,
  };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new RackError('bad_argument', `${(err as Error).message.split('\n')[0]} (usage: ${command.usage})`);
  }
  const args = parsed.positionals;
  if (args.length < command.args.min || args.length > command.args.max) {
    throw new RackError('bad_argument', `wrong number of arguments (usage: ${command.usage})`);
  }
  const flag = parsed.values['app'];
  const app = command.app
    ? await selectApp(services.store, {
        flag: typeof flag === 'string' ? flag : undefined,
        env: req.env['RACK_APP'],
        login: req.login,
        key: req.key,
      })
    : '';
  authorize(req.key, command.access, command.name, command.app ? app : undefined);
  const ctx: CommandContext = {
    app,
    args,
    flags: parsed.values,
    key: req.key,
    services,
    print: (line) => io.stdout(`${line}\n`),
    write: (text) => io.stdout(text),
    readInput: (max) => io.readInput(max),
    closed: io.closed,
    printJson: (value) => io.stdout(`${JSON.stringify(value, null, 2)}\n`),
  };
  await command.run(ctx);
}
