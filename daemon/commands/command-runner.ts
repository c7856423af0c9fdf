import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { authorize, keyHasApp } from '../access/access-policy.js';
import { assertAppName } from '../app-name.js';
import type { Caller } from '../access/principal.js';
import { RackError } from '../rack-error.js';
import type { ExecRequest } from '../ssh/ssh-server.js';
import { appsCommands } from './apps.js';
import { selectApp } from './app-selection.js';
import { commandHelp, suggestCommand } from './command-help.js';
import type { AuditNote, Command, CommandContext, CommandSession, Flags, Services } from './command.js';
import { configCommands } from './config.js';
import { cronCommands } from './cron.js';
import { domainsCommands } from './domains.js';
import { drainsCommands } from './drains.js';
import { webhooksCommands } from './webhooks.js';
import { historyCommands } from './history.js';
import { keysCommands } from './keys.js';
import { limitCommands } from './limits.js';
import { logsCommands } from './logs.js';
import { maintenanceCommands } from './maintenance.js';
import { metricsCommands } from './metrics.js';
import { psCommands } from './ps.js';
import { releaseCommands } from './releases.js';
import { tokensCommands } from './tokens.js';
import { auditCommands } from './audit.js';
import { nodesCommands } from './nodes.js';
import { certsCommands } from './certs.js';
import { routerCommands } from './router.js';
import { addonsCommands } from './addons.js';
import { rackCommands } from './rack.js';
import { repoCommands } from './repo.js';
import { pipelinesCommands } from './pipelines.js';
import { tarballBuildCommands } from './tarball-builds.js';

/** `run` is parsed by the ssh layer (its line is not split), yet `help run` should know it. */
const RUN_HELP = {
  name: 'run',
  usage: 'run [-a APP] COMMAND...',
  summary: 'run a one-off process of the current release (ssh -t for a TTY)',
  example: 'run -a myapp -- node scripts/migrate.js',
};

const metaCommands: Command[] = [
  {
    name: 'help',
    access: 'public',
    usage: 'help [COMMAND]',
    summary: 'list the commands, or show how to use one',
    example: 'help config:set',
    app: false,
    args: { min: 0, max: 1 },
    async run(ctx) {
      const asked = ctx.args[0];
      if (asked !== undefined) {
        const command = asked === RUN_HELP.name ? RUN_HELP : BY_NAME.get(asked);
        if (!command) throw unknownCommand(asked);
        for (const line of commandHelp(command)) ctx.print(line);
        return;
      }
      ctx.print('Usage: ssh rack COMMAND [ARGS] [-a APP]');
      ctx.print('');
      const width = Math.max(...COMMANDS.map((c) => c.usage.length));
      for (const c of COMMANDS) ctx.print(`  ${c.usage.padEnd(width)}  ${c.summary}`);
      ctx.print(`  ${RUN_HELP.usage.padEnd(width)}  ${RUN_HELP.summary}`);
      ctx.print('');
      ctx.print('ssh rack help COMMAND (or COMMAND --help) shows one with an example.');
      ctx.print('Deploy with: git push rack main');
    },
  },
];

const COMMANDS: Command[] = [...appsCommands, ...configCommands, ...historyCommands, ...tarballBuildCommands, ...releaseCommands, ...domainsCommands, ...certsCommands, ...routerCommands, ...maintenanceCommands, ...addonsCommands, ...psCommands, ...cronCommands, ...limitCommands, ...logsCommands, ...metricsCommands, ...drainsCommands, ...webhooksCommands, ...keysCommands, ...tokensCommands, ...auditCommands, ...nodesCommands, ...pipelinesCommands, ...rackCommands, ...repoCommands, ...metaCommands];
const BY_NAME = new Map(COMMANDS.map((c) => [c.name, c]));

export interface CommandIo {
  /** Text for the user: ssh's stdout, or the progress lines of an HTTP answer. */
  stdout(text: string): void;
  /** `--json` output and a change's result; over ssh printed as JSON (results are dropped). */
  json?(value: unknown, kind: 'query' | 'result'): void;
  readInput(maxBytes: number): Promise<string>;
  closed: Promise<void>;
  /** See CommandContext.following. */
  following?(): void;
  session?: CommandSession;
  /** The request's raw body (see CommandContext.body). */
  body?: Readable;
}

/** One command to run, its words already parsed (from an ssh command line or an API request). */
export interface Invocation {
  command: Command;
  /** The selected app ('' for commands that take none), its name already checked. */
  app: string;
  args: string[];
  flags: Flags;
}

export function findCommand(name: string): Command | undefined {
  return BY_NAME.get(name);
}

/** Every command a user may type (for the checks that each has an example). */
export function allCommands(): readonly Command[] {
  return COMMANDS;
}

function unknownCommand(name: string): RackError {
  const shown = JSON.stringify(name.slice(0, 60));
  const guess = suggestCommand(name, [...BY_NAME.keys(), RUN_HELP.name]);
  return new RackError('bad_command', guess === undefined ? `unknown command ${shown}; try: ssh rack help` : `unknown command ${shown}; did you mean ${guess}? (ssh rack help lists them)`);
}

/** `--help` or `-h` among a command's words (before a `--`, after which words are data). */
function asksForHelp(words: string[]): boolean {
  for (const word of words) {
    if (word === '--') return false;
    if (word === '--help' || word === '-h') return true;
  }
  return false;
}

/** Parses one ssh command line against the command table and runs it. */
export async function runCommand(services: Services, req: Pick<ExecRequest, 'caller' | 'login' | 'env'>, argv: string[], io: CommandIo): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '') throw new RackError('bad_command', 'no command given; try: ssh rack help');
  const command = BY_NAME.get(name);
  if (!command) throw unknownCommand(name);
  // Answered before the words are checked: they are often what the user is unsure of.
  if (asksForHelp(rest)) {
    for (const line of commandHelp(command)) io.stdout(`${line}\n`);
    return;
  }

  const options = {
    ...(command.app !== false ? { app: { type: 'string' as const, short: 'a' } } : {}),
    ...(command.json ? { json: { type: 'boolean' as const } } : {}),
    ...command.options,
  };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
  } catch (err) {
    // node's message goes on to suggest `-- "--x"`, a shell habit that reads as unbalanced quotes here.
    const first = (err as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, '.');
    throw new RackError('bad_argument', `${first} (usage: ${command.usage})`);
  }
  const args = parsed.positionals;
  if (args.length < command.args.min || args.length > command.args.max) {
    throw new RackError('bad_argument', `wrong number of arguments (usage: ${command.usage})`);
  }
  const flag = parsed.values['app'];
  const app = command.app === 'optional'
    ? await optionalApp(services, typeof flag === 'string' ? flag : undefined)
    : command.app
    ? await selectApp(services.store, {
        flag: typeof flag === 'string' ? flag : undefined,
        env: req.env['RACK_APP'],
        login: req.login,
        key: req.caller.principal,
      })
    : '';
  await invoke(services, req.caller, { command, app, args, flags: parsed.values }, io);
}

/**
 * Runs a parsed command for a caller: the access check, the command, and for changes the audit
 * entry (refusals and failures included). ssh and the HTTP API both come through here.
 */
export async function invoke(services: Services, caller: Caller, inv: Invocation, io: CommandIo): Promise<void> {
  const { command, app, args, flags } = inv;
  const json = io.json ?? ((value: unknown, kind: 'query' | 'result') => (kind === 'query' ? io.stdout(`${JSON.stringify(value, null, 2)}\n`) : undefined));
  const ctx: CommandContext = {
    app,
    args,
    flags,
    principal: caller.principal,
    caller,
    services,
    print: (line) => io.stdout(`${line}\n`),
    write: (text) => io.stdout(text),
    readInput: (max) => io.readInput(max),
    closed: io.closed,
    following: () => io.following?.(),
    ...(io.session ? { session: io.session } : {}),
    ...(io.body ? { body: io.body } : {}),
    printJson: (value) => json(value, 'query'),
    result: (value) => json(value, 'result'),
  };
  let outcome = 'ok';
  try {
    authorize(caller.principal, command.access, command.name, command.app === true ? app : undefined);
    // A command that only narrows to an app must not tell a caller without it what that app holds.
    if (command.app === 'optional' && app !== '' && !keyHasApp(caller.principal, app)) {
      throw new RackError('forbidden', `${caller.principal.kind} "${caller.principal.name}" may not run ${command.name} on ${app}: it has no right on ${app}`);
    }
    // Refused before it starts anything: a scale would otherwise run processes it cannot record.
    if (command.audit && services.store.failure) throw services.store.failure;
    if (command.audit && services.stopping()) throw new RackError('restarting', 'rack is restarting; try again in a moment');
    await command.run(ctx);
  } catch (err) {
    outcome = RackError.from(err).code;
    throw err;
  } finally {
    if (command.audit) await recordChange(services, caller, command, ctx, outcome);
  }
}

/** `-a APP` of a command that does not need one: checked when given; never guessed when not. */
async function optionalApp(services: Services, flag: string | undefined): Promise<string> {
  if (flag === undefined) return '';
  const name = assertAppName(flag);
  await services.store.requireApp(name);
  return name;
}

async function recordChange(services: Services, caller: Caller, command: Command, ctx: CommandContext, outcome: string): Promise<void> {
  let note: AuditNote;
  try {
    note = command.audit!(ctx);
  } catch {
    // The describer re-reads arguments the command refused: record the attempt without them.
    note = { detail: '' };
  }
  await services.audit.record(caller, {
    app: note.app ?? (ctx.app === '' ? null : ctx.app),
    action: command.name,
    detail: note.detail,
    outcome,
  });
}
