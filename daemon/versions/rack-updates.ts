import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Caller } from '../access/principal.js';
import { createdBy } from '../access/principal.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { SwitchAnswer } from '../launcher/launcher-protocol.js';
import { RackError } from '../rack-error.js';
import type { RackBuild, RackReleasePhase, RackReleaseRecord } from '../store/records.js';
import { FIRST_SCHEMA } from '../store/schema-store.js';
import type { Store } from '../store/store.js';
import { MIGRATIONS, type Migration } from './migrations.js';
import { describeBuild, rackBuildOf } from './rack-build.js';
import { installVersion, isInstalled, makeStack, stackDigest, versionDir, type InstallSteps } from './rack-install.js';
import { checkRef, checkSourceUrl, commitsAhead, defaultSource, fetchSource } from './rack-source.js';
import { latestSchema } from './schema-migration.js';
import type { CheckReport } from './startup-check.js';

const run = promisify(execFile);

/** What a switch needs from rackd: let go of everything, have the launcher start `dir`, and come back on a failure. */
export interface SwitchRequest {
  dir: string;
  /** The ssh channel that asked: kept open through the switch, to tell its client how it went. */
  keep?: unknown;
  /** Take the store down to this schema (with this rack's own down steps) before the switch. */
  migrateDownTo?: number;
}

export type Switcher = (req: SwitchRequest) => Promise<SwitchAnswer>;

/** Where an update's words go: `----->` steps and the indented lines of the tools. */
export interface UpdateOutput {
  print(line: string): void;
}

export interface UpdateDeps {
  home: string;
  /** The install this rackd runs from. */
  installDir: string;
  build: RackBuild;
  store: Store;
  audit: AuditLog;
  switcher: Switcher;
}

/** What `rack:update --check` finds. */
export interface UpdateCheck {
  running: RackBuild;
  available: RackBuild;
  source: string;
  as: string;
  upToDate: boolean;
  /** Commits the available one has that the running one has not, when both are known. */
  ahead: number | null;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

/**
 * rack's own releases: `rack:update` and `rack:rollback`. Each runs its steps beside the running
 * rack (fetch, checkout, dependencies, build, stack images, the new install's own start-up check),
 * timing each, with a ledger entry opened pending once the target is known; only then it switches
 * (see Rackd.switchTo and the launcher). A failure before the switch leaves this rackd as it was
 * and the entry failed at that step; after it, the entry is finished by whichever rackd starts.
 */
export class RackUpdates {
  #busy = false;
  /** Set once a switch began in the background: this rackd is on its way out, or starts again anew. */
  #switching = false;

  constructor(private readonly deps: UpdateDeps) {}

  async check(opts: { ref?: string; from?: string }, out: UpdateOutput): Promise<UpdateCheck> {
    return this.#exclusive(async () => {
      const source = checkSourceUrl(opts.from ?? (await defaultSource(this.deps.installDir)));
      const fetched = await fetchSource(this.deps.home, source, opts.ref === undefined ? undefined : checkRef(opts.ref), (l) => out.print(`       ${l}`));
      const running = this.deps.build;
      return {
        running,
        available: { version: fetched.version, commit: fetched.commit },
        source,
        as: fetched.as,
        upToDate: fetched.commit === running.commit,
        ahead: (await commitsAhead(this.deps.home, running.commit, fetched.commit)) ?? null,
      };
    });
  }

  async update(opts: { ref?: string; from?: string; caller: Caller; keep?: unknown }, out: UpdateOutput): Promise<void> {
    await this.#exclusive(async () => {
      const { home, installDir, build } = this.deps;
      const ref = opts.ref === undefined ? undefined : checkRef(opts.ref);
      const source = checkSourceUrl(opts.from ?? (await defaultSource(installDir)));
      const phases: RackReleasePhase[] = [];
      const steps = this.#steps(phases, out);
      const fetched = await steps.phase('fetch', `Fetching ${ref ?? 'HEAD'} from ${source}`, () => fetchSource(home, source, ref, steps.line));
      const target = { version: fetched.version, commit: fetched.commit };
      if (target.commit === build.commit) return out.print(`-----> rack is already ${describeBuild(build)} (${fetched.as}); nothing to do`);
      const entry = await this.#open('update', target, versionDir(home, target.commit), `Update to ${describeBuild(target)} (${fetched.as})`, opts.caller);
      out.print(`-----> r${entry.id}: ${describeBuild(build)} → ${describeBuild(target)}`);
      const dir = await this.#failAt(entry, phases, () => installVersion(home, target.commit, installDir, steps));
      await this.#switch(entry, dir, phases, steps, opts, out);
    });
  }

  /** Back to release `rN` (by default the one that ran before this rack): the same steps as an update. */
  async rollback(opts: { release?: number; caller: Caller; keep?: unknown }, out: UpdateOutput): Promise<void> {
    await this.#exclusive(async () => {
      const { home, installDir, build } = this.deps;
      const target = await this.#rollbackTarget(opts.release);
      const phases: RackReleasePhase[] = [];
      const steps = this.#steps(phases, out);
      const entry = await this.#open('rollback', target, target.dir ?? versionDir(home, target.commit), `Rollback to r${target.id}: ${describeBuild(target)}`, opts.caller);
      out.print(`-----> r${entry.id}: ${describeBuild(build)} → ${describeBuild(target)} (as r${target.id})`);
      const dir = await this.#failAt(entry, phases, async () => {
        const kept = await this.#keptInstall(target);
        if (kept) {
          steps.line(`installed in ${kept}`);
          return kept;
        }
        // Its install is gone: made again from source.git, which holds every commit rack fetched.
        return installVersion(home, target.commit, installDir, steps);
      });
      await this.#switch(entry, dir, phases, steps, opts, out);
    });
  }

  async #exclusive<T>(work: () => Promise<T>): Promise<T> {
    if (this.#busy || this.#switching) throw new RackError('update_failed', 'another rack:update or rack:rollback is under way');
    this.#busy = true;
    try {
      return await work();
    } finally {
      this.#busy = false;
    }
  }

  #steps(phases: RackReleasePhase[], out: UpdateOutput): InstallSteps & { current: string } {
    const steps = {
      current: 'fetch',
      line: (text: string) => out.print(`       ${text}`),
      async phase<T>(name: string, title: string, work: () => Promise<T>): Promise<T> {
        steps.current = name;
        out.print(`-----> ${title}`);
        const started = performance.now();
        const result = await work();
        const ms = Math.round(performance.now() - started);
        phases.push({ name, ms });
        out.print(`       done in ${seconds(ms)}`);
        return result;
      },
    };
    return steps;
  }

  async #open(kind: 'update' | 'rollback', target: RackBuild, dir: string, description: string, caller: Caller): Promise<RackReleaseRecord> {
    const { store, build } = this.deps;
    return store.rackReleases.create({
      version: target.version,
      commit: target.commit,
      from: build,
      kind,
      description,
      createdBy: createdBy(caller.principal),
      createdAt: new Date().toISOString(),
      status: 'pending',
      finishedAt: null,
      durationMs: null,
      failedStep: null,
      error: null,
      schema: (await store.schema.version()) ?? FIRST_SCHEMA,
      dir,
    });
  }

  /** Runs `work`; on a failure the entry is finished failed at the step under way, and the user told which. */
  async #failAt<T>(entry: RackReleaseRecord, phases: RackReleasePhase[], work: () => Promise<T>, step?: () => string): Promise<T> {
    try {
      return await work();
    } catch (err) {
      const failedStep = step?.() ?? PHASE_NAMES.find((n) => !phases.some((p) => p.name === n)) ?? 'install';
      const error = RackError.from(err).message;
      await this.deps.store.rackReleases.finish(entry.id, 'failed', { failedStep, error, phases });
      throw new RackError('update_failed', `r${entry.id} failed at ${failedStep}: ${error}; rack ${describeBuild(this.deps.build)} is still serving`);
    }
  }

  async #switch(entry: RackReleaseRecord, dir: string, phases: RackReleasePhase[], steps: InstallSteps & { current: string }, opts: { caller: Caller; keep?: unknown }, out: UpdateOutput): Promise<void> {
    const { installDir, build, store, audit } = this.deps;
    const migrateDownTo = await this.#failAt(
      entry,
      phases,
      async () => {
        if ((await stackDigest(dir)) !== (await stackDigest(installDir))) {
          await steps.phase('stack', 'Making the stack images (their definition changed)', () => makeStack(dir, steps));
        }
        return steps.phase('check', 'Running its start-up checks', async () => {
          const report = await startupCheck(dir, steps);
          if (report && report.commit !== entry.commit) throw new RackError('update_failed', `the install in ${dir} is ${describeBuild(report)}, not ${describeBuild(entry)}`);
          const schema = (await store.schema.version()) ?? FIRST_SCHEMA;
          const reads = report?.schemaLatest ?? (await this.#schemaFromLedger(entry));
          if (reads >= schema) {
            steps.line(reads > schema ? `it migrates the store from schema v${schema} to v${reads} as it starts` : `it reads the store's schema v${schema}`);
            return undefined;
          }
          checkWayDown(schema, reads);
          steps.line(`the store goes down from schema v${schema} to v${reads} (this rack's down steps) before it starts`);
          return reads;
        });
      },
      () => steps.current,
    );
    await store.rackReleases.notePhases(entry.id, phases);
    // Audited here, not by the command runner after the command: by then this rackd has let go of the store.
    await audit.record(opts.caller, { app: null, action: `rack:${entry.kind}`, detail: `r${entry.id}: ${describeBuild(build)} → ${describeBuild(entry)}`, outcome: 'switching' });
    steps.line('');
    const began = performance.now();
    const prepared = phases.reduce((sum, p) => sum + p.ms, 0);
    steps.line(`prepared in ${seconds(prepared)}; rackd ${describeBuild(build)} now hands over to ${describeBuild(entry)}`);
    const request = { dir, ...(opts.keep === undefined ? {} : { keep: opts.keep }), ...(migrateDownTo === undefined ? {} : { migrateDownTo }) };
    if (opts.keep === undefined) {
      // Over HTTP the answer cannot outlive this rackd's listener: it ends here, and the switch
      // starts once it has left; the ledger entry (GET /api/v1/rack/releases) tells how it went.
      out.print(`-----> r${entry.id} switches now; this answer ends here. The ledger (rack:releases) says how it went.`);
      this.#switching = true;
      setTimeout(() => void this.deps.switcher(request), HTTP_SWITCH_DELAY_MS).unref();
      return;
    }
    const answer = await this.deps.switcher(request);
    if (!answer.ok) throw new RackError('update_failed', `r${entry.id} failed at start: the new rackd ${answer.error}; rack ${describeBuild(build)} serves again`);
    const switched = performance.now() - began;
    steps.line('');
    // Our store is closed now: the new rackd finished the entry as it became ready.
    for (const line of [
      `-----> rack ${describeBuild(entry)} is serving (rackd pid ${answer.pid}, started in ${seconds(answer.startMs)}: store, router handoff, apps adopted)`,
      `       steps: ${[...phases, { name: 'switch', ms: Math.round(switched) }].map((p) => `${p.name} ${seconds(p.ms)}`).join(', ')}`,
      `-----> r${entry.id} done in ${seconds(Date.now() - Date.parse(entry.createdAt))}`,
    ]) out.print(line);
  }

  async #rollbackTarget(release: number | undefined): Promise<RackReleaseRecord & { dir?: string }> {
    const { store, build } = this.deps;
    const same = (r: RackBuild) => r.commit === build.commit && r.version === build.version;
    if (release !== undefined) {
      const r = await store.rackReleases.get(release);
      if (!r) throw new RackError('bad_argument', `no rack release r${release}`);
      if (r.status !== 'succeeded') throw new RackError('bad_argument', `r${release} did not succeed (${r.status}${r.failedStep ? ` at ${r.failedStep}` : ''}): nothing to go back to`);
      if (same(r)) throw new RackError('bad_argument', `r${release} is ${describeBuild(r)}, which is what runs`);
      if (r.commit === 'unknown') throw new RackError('bad_argument', `r${release} ran from an install whose commit is unknown: it cannot be found again`);
      return r;
    }
    for (const r of await store.rackReleases.list()) {
      if (r.status === 'succeeded' && !same(r) && r.commit !== 'unknown') return r;
    }
    throw new RackError('bad_argument', 'no earlier rack release to roll back to');
  }

  /** Where a release's install still is, built and at its commit. */
  async #keptInstall(target: RackReleaseRecord): Promise<string | undefined> {
    for (const dir of [target.dir, versionDir(this.deps.home, target.commit)]) {
      if (dir === undefined) continue;
      if (await isInstalled(dir)) return dir;
      // The first install (a checkout somebody made by hand) has no mark: its build and commit tell.
      const built = await access(join(dir, 'dist', 'daemon', 'main.js')).then(() => true, () => false);
      if (built && (await rackBuildOf(dir).catch(() => undefined))?.commit === target.commit) return dir;
    }
    return undefined;
  }

  /** The newest schema an install without a start-up check ran on, as the ledger remembers. */
  async #schemaFromLedger(entry: RackReleaseRecord): Promise<number> {
    let best = FIRST_SCHEMA;
    for (const r of await this.deps.store.rackReleases.list()) {
      if (r.commit === entry.commit && r.status === 'succeeded') best = Math.max(best, r.schema);
    }
    return best;
  }
}

/** Time for an HTTP answer to leave before its listener closes for the switch. */
const HTTP_SWITCH_DELAY_MS = 500;

const PHASE_NAMES = ['fetch', 'checkout', 'dependencies', 'build', 'stack', 'check'];

/**
 * Refuses, in one line, a way down the store cannot take with this rack's migrations: a version
 * that reads only an older schema is switched to only when every step down has a `down`.
 */
export function checkWayDown(from: number, to: number, list: Migration[] = MIGRATIONS): void {
  const latest = latestSchema(list);
  if (from > latest) throw new RackError('store_too_new', `the store is at schema v${from}, newer than this rack knows (v${latest}): it cannot take it down to v${to}`);
  const stuck = list.slice(to - FIRST_SCHEMA, from - FIRST_SCHEMA).find((m) => m.down === undefined);
  if (stuck) throw new RackError('store_too_new', `that rack reads the store up to schema v${to}, and it is at v${from}: migration ${stuck.name} (v${stuck.from} → v${stuck.from + 1}) has no way down`);
}

/**
 * The install's own start-up checks (`rackd check --json`), with this rackd's environment. An install
 * from before rack:update has no such command, and running its main.js would start a second rackd:
 * it is only run where the install has it.
 */
async function startupCheck(dir: string, steps: InstallSteps): Promise<CheckReport | undefined> {
  const script = join(dir, 'dist', 'daemon', 'main.js');
  const has = await access(join(dir, 'dist', 'daemon', 'versions', 'startup-check.js')).then(() => true, () => false);
  if (!has) {
    steps.line('that install has no start-up check (it is older than rack:update); its schema from the ledger');
    return undefined;
  }
  try {
    const { stdout } = await run(process.execPath, [script, 'check', '--json'], { env: process.env, timeout: 120_000 });
    const report = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as CheckReport;
    steps.line(`rack ${describeBuild(report)}: configuration, Docker and stack images are fine; it reads the store up to schema v${report.schemaLatest}`);
    return report;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    const said = (e.stderr ?? '').trim().split('\n').at(-1)?.replace(/^ !\s+/, '');
    throw new RackError('update_failed', said || e.message);
  }
}
