import { appEvents } from './app-events.js';
import type { Builder } from './build/builder.js';
import type { DeployLock } from './deploy-lock.js';
import { deployBranch } from './git/deploy-branch.js';
import type { PushLock } from './git/push-lock.js';
import type { PushPipeline, PushRequest } from './git/push-pipeline.js';
import { headCommit } from './git/repo.js';
import type { Logger } from './log.js';
import { RackError } from './rack-error.js';
import { assertAddonKeysKept, rebaseAttachments, sameAttachments } from './release/attachments.js';
import { diffConfig, isEmptyDiff, type ConfigVars } from './release/config-vars.js';
import { resolveFormation } from './release/formation.js';
import type { ImageRetention } from './release/image-retention.js';
import { PhaseTimings } from './phase-timings.js';
import type { Runtime } from './runtime/runtime.js';
import type { Attachment, BuildRecord, BuildSource, PromotedFrom, ReleaseRecord } from './store/records.js';
import type { Store } from './store/store.js';
import type { Supervisor } from './supervisor/supervisor.js';
import type { UserOutput } from './user-output.js';

export type { PushRequest };

export interface ConfigChange {
  app: string;
  keyName: string;
  description: string;
  /** The new config from the current one (and the add-ons attached now); throws to refuse the change. */
  apply: (config: ConfigVars, attached: Attachment[]) => ConfigVars;
  /**
   * Present on add-on attach and detach, the one change allowed to touch add-on keys: the new
   * list of attachments (it may throw, inside the app's lock, to refuse the change).
   */
  attachments?: (current: Attachment[]) => Attachment[];
  deploy: boolean;
}

/**
 * The pipeline: receive → build → release → deploy, one app at a time. Config changes, rollbacks
 * and promotions enter at the release stage: they reuse a build's image and never rebuild.
 */
export class Pipeline implements PushPipeline {
  constructor(
    private readonly store: Store,
    private readonly builder: Builder,
    private readonly supervisor: Supervisor,
    private readonly runtime: Pick<Runtime, 'images'>,
    private readonly retention: ImageRetention,
    private readonly lock: DeployLock,
    private readonly pushLock: PushLock,
    private readonly log: Logger,
  ) {}

  /**
   * Runs from the pre-receive hook, under the push lock (held by GitService). `beforeRollout` runs
   * once the release exists and before it can serve: the push records what git must then confirm.
   */
  push(
    req: PushRequest,
    out: UserOutput,
    interrupted?: AbortSignal,
    beforeRollout?: (release: ReleaseRecord) => Promise<void>,
  ): Promise<ReleaseRecord> {
    const timings = new PhaseTimings(req.receivedAt);
    if (req.receivedAt !== undefined) timings.add('receive', Date.now() - req.receivedAt);
    return this.lock.run(req.app, async () => {
      const base = await this.baseRelease(req.app);
      const config = await this.currentConfig(req.app, base);
      const build = await timings.time('build', () => this.builder.build({ ...req, config, createdBy: req.keyName }, out));
      // A client gone during the build gets nothing released: nothing is left to undo. Once the
      // rollout starts, git is left to finish the push without it (GitService).
      if (interrupted?.aborted) throw new RackError('deploy_failed', 'push interrupted: the client went away; nothing was released');
      const addons = await this.currentAttachments(req.app, base);
      return this.releaseBuild(req.app, build, { config, addons }, `Deploy ${req.commit.slice(0, 7)}`, req.keyName, out, timings, beforeRollout);
    });
  }

  /**
   * `builds:create`: builds the head of the deployed branch again (Convox's `convox build`), and
   * with `deploy` releases it too, for a redeploy without a new commit.
   */
  rebuild(req: { app: string; repo: string; keyName: string; deploy: boolean; noCache: boolean }, out: UserOutput): Promise<BuildRecord> {
    // The push lock first (as a push takes it): the branch head read here cannot be mid-push.
    return this.pushLock.run(
      req.app,
      () =>
        this.lock.run(req.app, async () => {
          const branch = (await deployBranch(await this.store.requireApp(req.app), req.repo)) ?? 'main';
          const commit = await headCommit(req.repo, branch);
          if (!commit) throw new RackError('no_such_build', `${req.app} has no pushed commit yet: git push rack ${branch} first`);
          const timings = new PhaseTimings();
          const base = await this.baseRelease(req.app);
          const config = await this.currentConfig(req.app, base);
          const build = await timings.time('build', () => this.builder.build({ ...req, commit, objects: {}, config, createdBy: req.keyName }, out));
          const addons = await this.currentAttachments(req.app, base);
          if (req.deploy) await this.releaseBuild(req.app, build, { config, addons }, `Deploy ${commit.slice(0, 7)} (rebuild)`, req.keyName, out, timings);
          return build;
        }),
      () => out.header(`Waiting for another push to ${req.app} to finish`),
    );
  }

  /**
   * `builds:deploy bN`: releases a build already made (as "Build again" leaves one), with the
   * app's config and add-ons of now, without building anything.
   */
  deployBuild(req: { app: string; build: number; keyName: string }, out: UserOutput): Promise<ReleaseRecord> {
    return this.lock.run(req.app, async () => {
      const build = await this.store.getBuild(req.app, req.build);
      if (!build) throw new RackError('no_such_build', `${req.app} has no build b${req.build}`);
      if (build.status !== 'succeeded' || !build.image) throw new RackError('bad_argument', `b${req.build} is ${build.status}: only a build that succeeded can be deployed`);
      const timings = new PhaseTimings();
      const base = await this.baseRelease(req.app);
      const config = await this.currentConfig(req.app, base);
      const addons = await this.currentAttachments(req.app, base);
      return this.releaseBuild(req.app, build, { config, addons }, `Deploy b${build.id} ${build.commit.slice(0, 7)}`, req.keyName, out, timings);
    });
  }

  /**
   * A build of a commit that is on no branch (a source tarball's, `build/tarball-source.ts`), and with
   * `deploy` its release: the same builder and rollout as a push, under the same locks.
   */
  buildCommit(
    req: { app: string; repo: string; commit: string; source: BuildSource; keyName: string; deploy: boolean },
    out: UserOutput,
  ): Promise<{ build: BuildRecord; release: ReleaseRecord | null }> {
    return this.pushLock.run(
      req.app,
      () =>
        this.lock.run(req.app, async () => {
          const timings = new PhaseTimings();
          const base = await this.baseRelease(req.app);
          const config = await this.currentConfig(req.app, base);
          const build = await timings.time('build', () => this.builder.build({ ...req, objects: {}, config, createdBy: req.keyName }, out));
          if (!req.deploy) return { build, release: null };
          const addons = await this.currentAttachments(req.app, base);
          const what = `Deploy ${req.source.version ?? req.commit.slice(0, 7)} (tarball)${req.source.description === undefined ? '' : `: ${req.source.description}`}`;
          const release = await this.releaseBuild(req.app, build, { config, addons }, what, req.keyName, out, timings);
          return { build, release };
        }),
      () => out.header(`Waiting for another push to ${req.app} to finish`),
    );
  }

  /**
   * Undoes a pushed release whose commit never reached the deploy branch (and cannot be put there):
   * a new release copying the newest succeeded release before it. Nothing to do when that release
   * no longer serves.
   */
  revertPush(
    req: { app: string; release: number; commit: string; branch: string },
    out: UserOutput,
  ): Promise<ReleaseRecord | undefined> {
    return this.lock.run(req.app, async () => {
      const app = await this.store.requireApp(req.app);
      if (app.currentRelease !== req.release) return undefined;
      const target = (await this.store.listReleases(app.name)).find((r) => r.version < req.release && r.status === 'succeeded');
      if (!target) {
        throw new RackError('no_such_release', `v${req.release} serves ${req.commit.slice(0, 7)}, which never reached ${req.branch}, and there is no earlier release to go back to`);
      }
      if (!(await this.runtime.images.exists(target.image))) {
        throw new RackError('no_such_build', `the image of v${target.version} (${target.image}) was pruned; cannot roll back`);
      }
      const release = await this.newRelease(app.name, target, {
        ...(await this.withAttachmentsNow(app.name, target)),
        description: `Rollback to v${target.version}: the push of ${req.commit.slice(0, 7)} never reached ${req.branch}`,
        createdBy: 'rack',
      });
      await this.deploy(release, out, new PhaseTimings());
      return release;
    });
  }

  private async releaseBuild(
    app: string,
    build: BuildRecord,
    settings: { config: ConfigVars; addons: Attachment[] },
    description: string,
    keyName: string,
    out: UserOutput,
    timings: PhaseTimings,
    beforeRollout?: (release: ReleaseRecord) => Promise<void>,
  ): Promise<ReleaseRecord> {
    const release = await this.newRelease(
      app,
      {
        build: build.id,
        image: build.image!,
        builder: build.builder,
        healthcheck: build.healthcheck,
        ...(build.cron ? { cron: build.cron } : {}),
        processTypes: build.processTypes,
        ...(build.appFormation ? { appFormation: build.appFormation } : {}),
      },
      { ...settings, description, createdBy: keyName },
    );
    try {
      await beforeRollout?.(release);
    } catch (err) {
      await this.store.finishRelease(release, 'failed', RackError.from(err).message);
      throw err;
    }
    await this.deploy(release, out, timings);
    out.header(`Released v${release.version}`);
    out.detail(`${this.supervisor.url(app)} deployed`);
    return release;
  }

  /** A new release with the newest release's build and a changed config. Null when the app has no release yet. */
  changeConfig(change: ConfigChange, out: UserOutput): Promise<ReleaseRecord | null> {
    return this.lock.run(change.app, async () => {
      const latest = await this.baseRelease(change.app);
      const before = await this.currentConfig(change.app, latest);
      const attached = await this.currentAttachments(change.app, latest);
      const after = change.apply({ ...before }, attached);
      const addons = change.attachments ? change.attachments(attached) : attached;
      if (!change.attachments) assertAddonKeysKept(before, after, attached);
      if (isEmptyDiff(diffConfig(before, after)) && sameAttachments(attached, addons)) {
        throw new RackError('bad_argument', 'nothing changed: the config already has those values');
      }
      if (!latest) {
        await this.store.setAppConfig(change.app, after, addons);
        return null;
      }
      const release = await this.newRelease(change.app, latest, {
        config: after,
        addons,
        description: change.description,
        createdBy: change.keyName,
      });
      if (change.deploy) await this.deploy(release, out, new PhaseTimings());
      else await this.store.finishRelease(release, 'recorded', null);
      return release;
    });
  }

  /**
   * Rolls out a copy of an earlier (or later) release as a new release. Without a target, a
   * rollback goes to the newest succeeded release before the current one.
   */
  redeploy(
    req: { app: string; target: number | undefined; keyName: string; kind: 'rollback' | 'promote' },
    out: UserOutput,
  ): Promise<{ release: ReleaseRecord; previous: number }> {
    return this.lock.run(req.app, async () => {
      const app = await this.store.requireApp(req.app);
      const target = await this.targetRelease(app.name, app.currentRelease, req.target, req.kind);
      if (!(await this.runtime.images.exists(target.image))) {
        throw new RackError(
          'no_such_build',
          `the image of v${target.version} (${target.image}) was pruned; push the commit again to rebuild it`,
        );
      }
      const settings = await this.withAttachmentsNow(app.name, target);
      if (!sameAttachments(target.addons, settings.addons)) {
        const now = settings.addons.map((a) => `${a.addon} as ${a.alias}`).join(', ') || 'none';
        out.detail(`add-ons stay as attached now (${now}), not as in v${target.version}`);
      }
      const release = await this.newRelease(app.name, target, {
        ...settings,
        description: req.kind === 'rollback' ? `Rollback to v${target.version}` : `Promote v${target.version}`,
        createdBy: req.keyName,
      });
      await this.deploy(release, out, new PhaseTimings(), req.kind === 'rollback' ? 'rollback' : 'release');
      return { release, previous: app.currentRelease };
    });
  }

  /**
   * `pipelines:promote`: a new release of `app` that runs another app's release image (`image`: that
   * image under this app's name), with this app's own config and add-ons. No build runs; the rollout
   * is the usual health-checked one, under this app's deploy lock.
   */
  promoteImage(
    req: { app: string; source: ReleaseRecord; image: string; promotedFrom: PromotedFrom; keyName: string },
    out: UserOutput,
  ): Promise<ReleaseRecord> {
    return this.lock.run(req.app, async () => {
      const base = await this.baseRelease(req.app);
      const config = await this.currentConfig(req.app, base);
      const addons = await this.currentAttachments(req.app, base);
      const release = await this.newRelease(
        req.app,
        { ...req.source, image: req.image },
        { config, addons, description: `Promote from ${req.source.app} v${req.source.version}`, createdBy: req.keyName, promotedFrom: req.promotedFrom },
      );
      await this.deploy(release, out, new PhaseTimings());
      out.header(`Released v${release.version} of ${req.app}`);
      out.detail(`${this.supervisor.url(req.app)} deployed`);
      return release;
    });
  }

  private async targetRelease(
    app: string,
    current: number,
    wanted: number | undefined,
    kind: 'rollback' | 'promote',
  ): Promise<ReleaseRecord> {
    if (wanted === undefined) {
      const releases = await this.store.listReleases(app);
      const previous = releases.find((r) => r.version < current && r.status === 'succeeded');
      if (!previous) throw new RackError('no_such_release', 'there is no earlier succeeded release to roll back to');
      return previous;
    }
    const target = await this.store.getRelease(app, wanted);
    if (!target) throw new RackError('no_such_release', `${app} has no release v${wanted}`);
    if (target.status === 'pending') throw new RackError('bad_argument', `v${wanted} is still rolling out`);
    if (kind === 'rollback' && target.status === 'failed') {
      throw new RackError('bad_argument', `v${wanted} failed (${target.error ?? 'unknown reason'}); roll back to a release that worked`);
    }
    return target;
  }

  /**
   * The deploy stage: rolls a new release out (its release phase first) and records the outcome;
   * on failure the release is marked failed and the one serving before stays current.
   */
  private async deploy(release: ReleaseRecord, out: UserOutput, timings: PhaseTimings, kind: 'release' | 'rollback' = 'release'): Promise<void> {
    out.header(`Deploying v${release.version}`);
    const told = { version: release.version, build: release.build, description: release.description };
    const before = (await this.store.requireApp(release.app)).currentRelease;
    try {
      await this.supervisor.rollout({
        release,
        out,
        releasePhase: true,
        // A release runs the whole formation again: what ps:stop stopped too.
        stopped: [],
        timings,
        record: (serving) => this.store.finishRelease(release, 'succeeded', null, serving),
      });
    } catch (err) {
      const error = RackError.from(err);
      await this.store.finishRelease(release, 'failed', error.message);
      this.log.warn({ app: release.app, release: release.version, err: error.message }, 'release failed');
      await this.prune(release.app);
      const serving = before ? `v${before} keeps serving` : 'nothing was serving before it';
      appEvents.emit({ kind, app: release.app, action: 'failed', actor: release.createdBy, data: { ...told, status: 'failed', error: error.message, current: before } });
      throw new RackError('deploy_failed', `${error.message}; ${serving}`, { cause: err });
    }
    this.log.info({ app: release.app, release: release.version, timings: timings.snapshot() }, 'release deployed');
    appEvents.emit({ kind, app: release.app, action: 'succeeded', actor: release.createdBy, data: { ...told, status: 'succeeded', current: release.version } });
    out.header(`Timings: ${timings.line()}`);
    await this.store.setReleaseTimings(release.app, release.version, timings.snapshot()).catch((err: unknown) => {
      this.log.warn({ app: release.app, err: String(err) }, 'could not keep the release timings');
    });
    await this.prune(release.app);
  }

  /** Old images go after every rollout, failed ones too: images of failed deploys must not pile up. */
  private async prune(app: string): Promise<void> {
    await this.retention.prune(app).catch((err: unknown) => {
      this.log.warn({ app, err: String(err) }, 'image pruning failed');
    });
  }

  /** A new release of `base`'s image (a build, or an earlier release) with its own config and words. */
  private async newRelease(
    app: string,
    base: Pick<ReleaseRecord, 'build' | 'image' | 'builder' | 'healthcheck' | 'cron' | 'processTypes' | 'appFormation' | 'promotedFrom'>,
    fields: Pick<ReleaseRecord, 'config' | 'addons' | 'description' | 'createdBy' | 'promotedFrom'>,
  ): Promise<ReleaseRecord> {
    return this.store.createRelease(app, {
      build: base.build,
      image: base.image,
      builder: base.builder,
      ...(base.healthcheck ? { healthcheck: base.healthcheck } : {}),
      // The jobs go with the code: a rollback runs the target's schedule, a config change keeps it.
      ...(base.cron ? { cron: base.cron } : {}),
      processTypes: base.processTypes,
      // A config change or rollback of a promoted release still runs another app's build: say whose.
      ...(base.promotedFrom ? { promotedFrom: base.promotedFrom } : {}),
      ...(base.appFormation ? { appFormation: base.appFormation } : {}),
      formation: resolveFormation(base, (await this.store.requireApp(app)).formation),
      ...fields,
    });
  }

  /**
   * The release a config change starts from: the newest one that did not fail. A change whose
   * rollout failed is not what the app has, so running the same `config:set` again retries it.
   */
  baseRelease(app: string): Promise<ReleaseRecord | undefined> {
    return this.store.latestRelease(app, (r) => r.status !== 'failed');
  }

  /** The add-ons attached now: the base release's; before any release, those kept on the app record. */
  async currentAttachments(app: string, base?: ReleaseRecord): Promise<Attachment[]> {
    base ??= await this.baseRelease(app);
    if (base) return [...(base.addons ?? [])];
    return [...((await this.store.getApp(app))?.addons ?? [])];
  }

  /** A rollback's or promotion's settings: `target`'s config with the add-ons attached now (release/attachments.ts). */
  private async withAttachmentsNow(app: string, target: ReleaseRecord): Promise<{ config: ConfigVars; addons: Attachment[] }> {
    const base = await this.baseRelease(app);
    const addons = await this.currentAttachments(app, base);
    const config = rebaseAttachments(target, { config: await this.currentConfig(app, base), addons });
    return { config, addons };
  }

  /** The app's config now: the base release's; before any release, the config kept on the app record. */
  async currentConfig(app: string, base?: ReleaseRecord): Promise<ConfigVars> {
    base ??= await this.baseRelease(app);
    if (base) return { ...base.config };
    return { ...((await this.store.getApp(app))?.config ?? {}) };
  }
}
