import { authorize } from '../access/access-policy.js';
import type { Principal } from '../access/principal.js';
import type { DeployLock } from '../deploy-lock.js';
import type { Logger } from '../log.js';
import type { Pipeline } from '../pipeline.js';
import { RackError } from '../rack-error.js';
import type { DockerRuntime } from '../runtime/docker-runtime.js';
import { PIPELINE_STAGES, type PipelineMember, type ReleaseRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { UserOutput } from '../user-output.js';

export interface PromotionOutcome {
  app: string;
  release: number | null;
  status: 'succeeded' | 'failed';
  error?: string;
}

/** The app's serving release; refused when it has none (nothing to promote or compare). */
export async function servingRelease(store: Store, app: string): Promise<ReleaseRecord> {
  const record = await store.requireApp(app);
  const release = record.currentRelease ? await store.getRelease(app, record.currentRelease) : undefined;
  if (!release) throw new RackError('no_such_release', `${app} has no running release yet: deploy it first`);
  return release;
}

/** The apps of the stage after `member`'s; refused at the last stage or when that stage is empty. */
export async function nextStage(store: Store, member: PipelineMember): Promise<PipelineMember[]> {
  const index = PIPELINE_STAGES.indexOf(member.stage);
  const later = PIPELINE_STAGES.slice(index + 1);
  if (later.length === 0) throw new RackError('bad_argument', `${member.app} is at ${member.stage}, the last stage of ${member.pipeline}: name a target with --to`);
  const members = await store.pipelines.members(member.pipeline);
  // The next stage that has apps: a pipeline without staging promotes development to production.
  for (const stage of later) {
    const apps = members.filter((m) => m.stage === stage);
    if (apps.length > 0) return apps;
  }
  throw new RackError('bad_argument', `${member.pipeline} has no app after ${member.stage}: pipelines:add APP --pipeline ${member.pipeline} --stage ${later[0]!}`);
}

export async function requireMember(store: Store, app: string): Promise<PipelineMember> {
  const member = await store.pipelines.memberOf(app);
  if (!member) throw new RackError('bad_argument', `${app} is in no pipeline: pipelines:add ${app} --pipeline NAME --stage STAGE`);
  return member;
}

/**
 * `pipelines:promote`: the source app's serving image becomes a new release of each target (build
 * once, release per environment). The image is tagged under each target's name (same ID), so each
 * app's image retention keeps what its releases run and the source pruning its own tag never removes it.
 */
export class Promotion {
  constructor(
    private readonly store: Store,
    private readonly pipeline: Pipeline,
    private readonly lock: DeployLock,
    private readonly runtime: Pick<DockerRuntime, 'tagImage' | 'promotedImageName' | 'imageExists'>,
    private readonly log: Logger,
  ) {}

  async promote(req: { source: string; to: string[]; principal: Principal; keyName: string }, out: UserOutput): Promise<{ source: ReleaseRecord; outcomes: PromotionOutcome[] }> {
    const member = await requireMember(this.store, req.source);
    const targets = req.to.length > 0 ? await this.namedTargets(member, req.to) : (await nextStage(this.store, member)).map((m) => m.app);
    // Every target is checked before any is touched: a key refused on one changes none.
    for (const target of targets) authorize(req.principal, 'deploy', 'pipelines:promote', target);
    // Read and tagged under the source's deploy lock: its next rollout prunes its own images, and
    // must not remove the one being promoted between the read and the tags.
    const { source, tags } = await this.lock.run(req.source, async () => {
      const source = await servingRelease(this.store, req.source);
      if (!(await this.runtime.imageExists(source.image))) {
        throw new RackError('no_such_build', `the image of ${req.source} v${source.version} (${source.image}) is gone; deploy ${req.source} again first`);
      }
      const tags = new Map<string, { image: string; imageId: string }>();
      for (const target of targets) {
        const name = this.runtime.promotedImageName(target, source.app, source.version);
        tags.set(target, { image: `${name.repo}:${name.tag}`, imageId: await this.runtime.tagImage(source.image, name) });
      }
      return { source, tags };
    });
    const origin = source.promotedFrom ? { build: source.promotedFrom.build, buildApp: source.promotedFrom.buildApp } : { build: source.build, buildApp: source.app };
    const outcomes: PromotionOutcome[] = [];
    for (const target of targets) {
      out.header(`Promoting ${req.source} v${source.version} to ${target}`);
      try {
        const { image, imageId } = tags.get(target)!;
        const release = await this.pipeline.promoteImage(
          {
            app: target,
            source,
            image,
            promotedFrom: { app: source.app, release: source.version, ...origin, imageId },
            keyName: req.keyName,
          },
          out,
        );
        outcomes.push({ app: target, release: release.version, status: 'succeeded' });
      } catch (err) {
        const error = RackError.from(err);
        out.error(`${target}: ${error.message}`);
        this.log.warn({ source: req.source, target, err: error.message }, 'promotion failed');
        outcomes.push({ app: target, release: null, status: 'failed', error: error.message });
      }
    }
    return { source, outcomes };
  }

  private async namedTargets(member: PipelineMember, names: string[]): Promise<string[]> {
    const members = await this.store.pipelines.members(member.pipeline);
    for (const name of names) {
      if (name === member.app) throw new RackError('bad_argument', `${name} cannot be promoted to itself`);
      if (!members.some((m) => m.app === name)) throw new RackError('bad_argument', `${name} is not in pipeline ${member.pipeline}`);
    }
    return [...new Set(names)];
  }
}
