import type { Readable, Writable } from 'node:stream';
import type { ParseArgsConfig } from 'node:util';
import type { AccessLevel } from '../access/access-policy.js';
import type { Caller, Principal } from '../access/principal.js';
import type { AddonBackups } from '../addons/addon-backups.js';
import type { Addons } from '../addons/addons.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { AutoCertificates } from '../certs/auto-certificates.js';
import type { Certificates } from '../certs/certificates.js';
import type { RackConfig } from '../config.js';
import { RackError } from '../rack-error.js';
import type { Pipeline } from '../pipeline.js';
import type { Promotion } from '../pipelines/promotion.js';
import type { LogHub } from '../logs/log-hub.js';
import type { MetricsRecorder } from '../metrics/metrics-recorder.js';
import type { DeployLock } from '../deploy-lock.js';
import type { AppRename } from '../app-rename.js';
import type { ScheduledJobs } from '../cron/scheduled-jobs.js';
import type { Drains } from '../drains/drains.js';
import type { AppWebhooks } from '../notifications/app-webhooks.js';
import type { DockerRuntime } from '../runtime/docker-runtime.js';
import type { RouterClient } from '../router/router-client.js';
import type { RackBuild } from '../store/records.js';
import type { RackUpdates } from '../versions/rack-updates.js';
import type { ProcessControl } from '../process-control.js';
import type { Store } from '../store/store.js';
import type { Supervisor } from '../supervisor/supervisor.js';
import type { RepoLinks } from '../workflows/repo-links.js';

export interface Services {
  config: RackConfig;
  store: Store;
  supervisor: Supervisor;
  router: RouterClient;
  pipeline: Pipeline;
  /** `ps:scale`, `ps:restart`, `ps:stop`, `ps:limit`: the current release's processes. */
  processes: ProcessControl;
  /** `pipelines:promote`: one app's image released to the next stage's apps. */
  promotion: Promotion;
  lock: DeployLock;
  /** apps:rename: the store's batch, then files, images and processes under the new name. */
  renames: AppRename;
  logs: LogHub;
  metrics: MetricsRecorder;
  runtime: DockerRuntime;
  audit: AuditLog;
  certs: Certificates;
  autoCerts: AutoCertificates;
  addons: Addons;
  backups: AddonBackups;
  /** Connected repositories (repo:connect). */
  repos: RepoLinks;
  drains: Drains;
  webhooks: AppWebhooks;
  /** app.json `cron`: the scheduler and cron:list/run/suspend/resume. */
  cron: ScheduledJobs;
  version: string;
  /** True from SIGTERM on: changes are refused (from ssh, the API and the Console alike) while those under way finish. */
  stopping: () => boolean;
  /** Which rack this rackd is, and since when it runs (`rack`); its own updates and rollbacks. */
  rack: { build: RackBuild; startedAt: Date; updates: RackUpdates };
}

/**
 * The client's raw streams, for the few commands that move bytes or need a terminal
 * (addons:export, addons:import, addons:connect). Only ssh sessions have them.
 */
export interface CommandSession {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  /** Terminal size when the client asked for one (`ssh -t`). */
  pty: { cols: number; rows: number } | null;
  /** Fires when the client goes away. */
  abort: AbortSignal;
}

export interface CommandContext {
  /** The selected app; empty for commands that take none. */
  app: string;
  args: string[];
  flags: Flags;
  /** The key or token running the command. */
  principal: Principal;
  caller: Caller;
  services: Services;
  /** Resolves when the client goes away (for commands that stream until then). */
  closed: Promise<void>;
  /**
   * Said by a command that has checked its input and now streams until `closed`: over HTTP the
   * answer's head goes out at once, so a client is not left waiting for its first line.
   */
  following(): void;
  /** The raw streams of an ssh session; absent over HTTP and in the console. */
  session?: CommandSession;
  /** An HTTP request's raw body, for the one route that takes bytes rather than JSON (a source tarball). */
  body?: Readable;
  /** The client's standard input, read to its end (at most `maxBytes`). */
  readInput(maxBytes: number): Promise<string>;
  print(line: string): void;
  /** Raw output, no newline added. */
  write(text: string): void;
  /** A query's answer with `--json` (over HTTP: the response body). */
  printJson(value: unknown): void;
  /**
   * A change's machine-readable outcome (the release it made, ...). Over ssh the text already said
   * it and this is dropped; over HTTP it ends the response.
   */
  result(value: unknown): void;
}

export type Flags = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** What an audited change records besides who and when; never a secret (config values, keys). */
export interface AuditNote {
  detail: string;
  /** The app changed, when the command names it in its arguments rather than with -a. */
  app?: string;
}

/** One `ssh rack NAME ...` command: how it parses, and what it does. */
export interface Command {
  name: string;
  usage: string;
  summary: string;
  /** One line as a user would type it, shown by `help NAME` and `NAME --help`. */
  example?: string;
  /**
   * Whether the command acts on one app (selected by -a, RACK_APP, login name, ...); `optional`:
   * it names its object otherwise (an add-on, a host) or lists several apps, and a `-a APP` given
   * narrows it to that app (checked, then in `ctx.app`; '' when not given).
   */
  app: boolean | 'optional';
  /** What the key must be allowed; checked before the command does anything. */
  access: AccessLevel;
  /** Whether `--json` is accepted. */
  json?: boolean;
  options?: NonNullable<ParseArgsConfig['options']>;
  args: { min: number; max: number };
  /** Present on commands that change something: what the audit log records of them. */
  audit?: (ctx: CommandContext) => AuditNote;
  run(ctx: CommandContext): Promise<void>;
}

/** Plain columns, padded to the widest cell; the last column is never padded. */
export function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}

/** `v12` or `12` → 12 (and `b3` for builds). */
export function parseNumber(word: string, prefix: 'v' | 'b'): number {
  const m = new RegExp(`^${prefix}?([1-9][0-9]{0,8})$`).exec(word);
  if (!m) {
    const what = prefix === 'v' ? 'release' : 'build';
    throw new RackError('bad_argument', `expected a ${what} like ${prefix}3, got ${JSON.stringify(word.slice(0, 20))}`);
  }
  return Number(m[1]);
}

export function timestamp(iso: string | null): string {
  if (!iso) return '-';
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}
