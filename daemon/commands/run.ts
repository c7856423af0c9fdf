import { authorize } from '../access/access-policy.js';
import { RackError } from '../rack-error.js';
import { resolveFormation, totalProcesses } from '../release/formation.js';
import { limitsFor } from '../runtime/isolation.js';
import { WEB_PORT } from '../supervisor/process-spec.js';
import type { ExecRequest } from '../ssh/ssh-server.js';
import { selectApp } from './app-selection.js';
import type { Services } from './command.js';
import { MAX_COMMAND_BYTES } from './command-line.js';

const RUN_LINE = /^\s*run(?:\s+|$)/;
const APP_OPTION = /^(?:-a\s+|--app(?:\s+|=))([^\s]+)\s*/;

export interface RunLine {
  app: string | undefined;
  command: string;
}

/**
 * `run` is the one command whose words are not split by rack: everything after `run` and its
 * leading `-a APP` is the command line the app's container runs (through its own bash, as on
 * Heroku), so pipes and quotes mean what the user wrote. Nothing of it touches the host.
 */
export function parseRunLine(line: string): RunLine | undefined {
  const m = RUN_LINE.exec(line);
  if (!m) return undefined;
  if (Buffer.byteLength(line) > MAX_COMMAND_BYTES) throw new RackError('bad_command', 'command line too long');
  let rest = line.slice(m[0].length);
  let app: string | undefined;
  const opt = APP_OPTION.exec(rest);
  if (opt) {
    app = opt[1];
    rest = rest.slice(opt[0].length);
  }
  if (/^-[^-\s]|^--\S/.test(rest)) throw new RackError('bad_argument', 'usage: run [-a APP] [--] COMMAND...');
  rest = rest.replace(/^--(\s+|$)/, '').trim();
  if (rest === '') throw new RackError('bad_argument', 'usage: run [-a APP] [--] COMMAND...');
  if (rest.includes('\0')) throw new RackError('bad_command', 'command line contains a NUL byte');
  return { app, command: rest };
}

/** Runs a one-off process of the app's current release, attached to the ssh session. */
export async function runOneOff(services: Services, req: ExecRequest, line: RunLine): Promise<number> {
  const app = await selectApp(services.store, { flag: line.app, env: req.env['RACK_APP'], login: req.login, key: req.caller.principal });
  authorize(req.caller.principal, 'member', 'run', app);
  // The command line may hold secrets; its first word says enough of what ran.
  await services.audit.record(req.caller, { app, action: 'run', detail: line.command.split(/\s/)[0]!.slice(0, 100), outcome: 'ok' });
  const record = await services.store.requireApp(app);
  const release = record.currentRelease ? await services.store.getRelease(app, record.currentRelease) : undefined;
  if (!release) throw new RackError('no_such_release', `${app} has no running release yet: push it first`);
  const network = await services.runtime.networks.ensure(app);
  // One-off processes count toward the app's RACK_MAX_PROCESSES with its formation. Nothing is
  // awaited between this count and runInteractive's, so `run`s asked for at once cannot all pass.
  const max = services.config.maxProcesses;
  const formation = totalProcesses(resolveFormation(release, record.formation));
  const oneOffs = services.runtime.tasks.oneOffCount(app);
  if (formation + oneOffs >= max) {
    throw new RackError('forbidden', `${app} runs ${formation} processes and ${oneOffs} one-off ones; an app may run at most ${max} in all (RACK_MAX_PROCESSES)`);
  }
  const abort = new AbortController();
  req.channel.once('close', () => abort.abort());
  return services.runtime.runInteractive({
    app,
    release: release.version,
    image: release.image,
    builder: release.builder,
    command: line.command,
    // As on Heroku, a one-off has a PORT too (a web server tried out by hand listens on it).
    env: { ...release.config, PORT: String(WEB_PORT) },
    // One-off processes join the app's network and run under its web processes' limits.
    network,
    limits: limitsFor('web', record.limits),
    tty: req.pty,
    stdin: req.channel,
    stdout: req.channel,
    stderr: req.channel.stderr,
    abort: abort.signal,
  });
}
