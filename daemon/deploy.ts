import type { Builder } from './build/builder.js';
import type { DeployLock } from './deploy-lock.js';
import type { GitObjectEnv } from './git/repo.js';
import type { Logger } from './log.js';
import { RackError } from './rack-error.js';
import type { ReleaseRecord } from './store/records.js';
import type { Store } from './store/store.js';
import type { Supervisor } from './supervisor/supervisor.js';
import type { UserOutput } from './user-output.js';

export interface PushRequest {
  app: string;
  commit: string;
  repo: string;
  objects: GitObjectEnv;
  keyName: string;
}

/** The pipeline: receive → build → release → deploy, one app at a time. */
export class Pipeline {
  constructor(
    private readonly store: Store,
    private readonly builder: Builder,
    private readonly supervisor: Supervisor,
    private readonly lock: DeployLock,
    private readonly log: Logger,
  ) {}

  push(req: PushRequest, out: UserOutput): Promise<ReleaseRecord> {
    return this.lock.run(req.app, async () => {
      const config = await this.currentConfig(req.app);
      const build = await this.builder.build({ ...req, config, createdBy: req.keyName }, out);
      const release = await this.store.createRelease(req.app, {
        build: build.id,
        image: build.image!,
        processTypes: build.processTypes,
        config,
        description: `Deploy ${req.commit.slice(0, 7)}`,
        createdBy: req.keyName,
      });
      await this.deploy(release, out);
      out.header(`Released v${release.version}`);
      out.detail(`${this.supervisor.url(req.app)} deployed`);
      return release;
    });
  }

  /** Rolls a release out and records the outcome; on failure the previous release stays current. */
  private async deploy(release: ReleaseRecord, out: UserOutput): Promise<void> {
    out.header(`Deploying v${release.version}`);
    try {
      await this.supervisor.deploy(release, out);
    } catch (err) {
      const error = RackError.from(err);
      await this.store.finishRelease(release, 'failed', error.message);
      this.log.warn({ app: release.app, release: release.version, err: error.message }, 'release failed');
      throw new RackError('deploy_failed', `${error.message}; the previous release keeps serving`, { cause: err });
    }
    await this.store.finishRelease(release, 'succeeded', null);
    this.log.info({ app: release.app, release: release.version }, 'release deployed');
  }

  /** The config a new release starts from: the newest release's, whatever became of it. */
  private async currentConfig(app: string): Promise<Record<string, string>> {
    const [latest] = await this.store.listReleases(app);
    return { ...(latest?.config ?? {}) };
  }
}
