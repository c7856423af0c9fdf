import type { Caller } from '../access/principal.js';
import { findCommand, invoke } from '../commands/command-runner.js';
import type { Flags, Services } from '../commands/command.js';
import { RackError } from '../rack-error.js';

/** What a console action does with the command's user lines while it runs. */
export type LineSink = (line: string) => void;

/**
 * Every query and change the console makes, as rack commands run through `invoke`: the same access
 * check, the same audit record and the same code path as ssh and the API. The console never checks
 * rights itself and never calls the pipeline; switching to a new command form happens here only.
 */
export class ConsoleCommands {
  constructor(private readonly services: Services) {}

  /** A query's `--json` answer. */
  async query<T>(caller: Caller, name: string, app: string, args: string[] = [], flags: Flags = {}): Promise<T> {
    let answer: unknown;
    await this.run(caller, name, app, args, { ...flags, json: true }, () => undefined, (value, kind) => {
      if (kind === 'query') answer = value;
    });
    return answer as T;
  }

  /** A command's text output, whole (builds:logs, config:get). */
  async text(caller: Caller, name: string, app: string, args: string[] = [], flags: Flags = {}): Promise<string> {
    let out = '';
    await this.run(caller, name, app, args, flags, (t) => (out += t));
    return out;
  }

  /** A command's text output as it comes (a download written to its answer piece by piece). */
  async stream(caller: Caller, name: string, app: string, args: string[], flags: Flags, write: (text: string) => void): Promise<void> {
    await this.run(caller, name, app, args, flags, write);
  }

  /** A change: its user lines go to `sink` as they come; its JSON answer (if any) is returned. */
  async change(caller: Caller, name: string, app: string, args: string[], flags: Flags, sink: LineSink, input = ''): Promise<unknown> {
    let pending = '';
    let answer: unknown;
    const write = (text: string) => {
      pending += text;
      let nl: number;
      while ((nl = pending.indexOf('\n')) !== -1) {
        sink(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    };
    try {
      await this.run(caller, name, app, args, flags, write, (value) => (answer = value), input);
    } finally {
      if (pending !== '') sink(pending);
    }
    return answer;
  }

  private async run(
    caller: Caller,
    name: string,
    app: string,
    args: string[],
    flags: Flags,
    stdout: (text: string) => void,
    json?: (value: unknown, kind: 'query' | 'result') => void,
    input = '',
  ): Promise<void> {
    const command = findCommand(name);
    if (!command) throw new RackError('internal', `the console asked for an unknown command ${name}`);
    await invoke(
      this.services,
      caller,
      { command, app: command.app ? app : '', args, flags },
      {
        stdout,
        ...(json ? { json } : {}),
        readInput: async (max) => {
          if (Buffer.byteLength(input) > max) throw new RackError('payload_too_large', `at most ${max} bytes`);
          return input;
        },
        // Console commands are not tied to the page that asked: a rollout goes on when it is closed.
        closed: new Promise<void>(() => undefined),
      },
    );
  }

  // ---- the console's changes, by name (one place to follow the commands' forms)

  rollback = (c: Caller, app: string, version: number, sink: LineSink) => this.change(c, 'releases:rollback', app, [`v${version}`], {}, sink);
  promote = (c: Caller, app: string, version: number, sink: LineSink) => this.change(c, 'releases:promote', app, [`v${version}`], {}, sink);
  build = (c: Caller, app: string, deploy: boolean, sink: LineSink) => this.change(c, 'builds:create', app, [], deploy ? { deploy: true } : {}, sink);
  deployBuild = (c: Caller, app: string, build: number, sink: LineSink) => this.change(c, 'builds:deploy', app, [`b${build}`], {}, sink);
  scale = (c: Caller, app: string, counts: Record<string, number>, sink: LineSink) =>
    this.change(c, 'ps:scale', app, Object.entries(counts).map(([t, n]) => `${t}=${n}`), {}, sink);
  restart = (c: Caller, app: string, type: string | undefined, sink: LineSink) => this.change(c, 'ps:restart', app, type ? [type] : [], {}, sink);
  maintenance = (c: Caller, app: string, on: boolean, sink: LineSink) => this.change(c, on ? 'maintenance:on' : 'maintenance:off', app, [], {}, sink);
  addDomain = (c: Caller, app: string, host: string, sink: LineSink) => this.change(c, 'domains:add', app, [host], {}, sink);
  removeDomain = (c: Caller, app: string, host: string, sink: LineSink) => this.change(c, 'domains:remove', app, [host], {}, sink);
  reviewApps = (c: Caller, app: string, on: boolean, sink: LineSink) => this.change(c, on ? 'reviewapps:enable' : 'reviewapps:disable', app, [], {}, sink);
  pipelinePromote = (c: Caller, app: string, sink: LineSink) => this.change(c, 'pipelines:promote', app, [], {}, sink);
  revokeToken = (c: Caller, name: string, sink: LineSink) => this.change(c, 'tokens:revoke', '', [name], {}, sink);
  removeKey = (c: Caller, name: string, sink: LineSink) => this.change(c, 'keys:remove', '', [name], {}, sink);
  addKey = (c: Caller, name: string, apps: string[], deployOnly: boolean, publicKey: string, sink: LineSink) =>
    this.change(c, 'keys:add', '', [name], { ...(apps.length ? { app: apps } : {}), ...(deployOnly ? { 'deploy-only': true } : {}) }, sink, publicKey);
  rackUpdate = (c: Caller, ref: string | undefined, from: string | undefined, sink: LineSink) =>
    this.change(c, 'rack:update', '', ref === undefined ? [] : [ref], from === undefined ? {} : { from }, sink);
  rackRollback = (c: Caller, release: number, sink: LineSink) => this.change(c, 'rack:rollback', '', [`r${release}`], {}, sink);
  createToken = (c: Caller, name: string, apps: string[], deployOnly: boolean, expires: string | undefined) =>
    this.query<{ token: string; name: string }>(c, 'tokens:create', '', [name], {
      ...(apps.length ? { app: apps } : {}),
      ...(deployOnly ? { 'deploy-only': true } : {}),
      ...(expires ? { expires } : {}),
    });

  createApp = (c: Caller, name: string, sink: LineSink) => this.change(c, 'apps:create', '', [name], {}, sink);
  /** `confirm` is the name as the user typed it: the command refuses any other. */
  destroyApp = (c: Caller, name: string, confirm: string, sink: LineSink) => this.change(c, 'apps:destroy', '', [name], { confirm }, sink);

  /** Sets and removes config vars in one release (`config:set KEY=VALUE ... --unset KEY ...`), or only records it. */
  changeConfig = (c: Caller, app: string, set: Record<string, string>, unset: string[], deploy: boolean, sink: LineSink) =>
    this.change(
      c,
      'config:set',
      app,
      Object.entries(set).map(([k, v]) => `${k}=${v}`),
      { ...(deploy ? {} : { 'no-deploy': true }), ...(unset.length ? { unset } : {}) },
      sink,
    );
}
