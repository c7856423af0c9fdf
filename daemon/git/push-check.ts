import type { Pipeline } from '../pipeline.js';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import type { PushMarker } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { UserOutput } from '../user-output.js';
import { hasCommit, headCommit, updateRef } from './repo.js';

export type PushOutcome = 'consistent' | 'not-serving' | 'branch-moved' | 'rolled-back' | 'unresolved';

const quiet: UserOutput = { header: () => {}, detail: () => {}, error: () => {}, raw: () => {} };

/**
 * The invariant: a release made from a push serves only if its commit is the head of the app's
 * deploy branch. The pre-receive hook releases before git updates the ref, so once git-receive-pack
 * is done (or, after a crash, at the next start) the two are compared, under the push lock. A
 * release serving a commit the branch did not get is mended by moving the branch when the repo has
 * the commit, else by rolling back to the release before it.
 */
export class PushCheck {
  constructor(
    private readonly store: Store,
    private readonly pipeline: Pipeline,
    private readonly repoOf: (app: string) => string,
    private readonly log: Logger,
  ) {}

  async settle(marker: PushMarker, out: UserOutput = quiet): Promise<PushOutcome> {
    try {
      return await this.compare(marker, out);
    } finally {
      await this.store.clearPushMarker(marker.app);
    }
  }

  /** At start: markers left by a rackd that died between a push's rollout and its check. */
  async recover(): Promise<void> {
    for (const marker of await this.store.listPushMarkers()) {
      try {
        const outcome = await this.settle(marker);
        this.log.info({ app: marker.app, release: marker.release, commit: marker.commit, outcome }, 'push left in flight checked');
      } catch (err) {
        this.log.error({ app: marker.app, release: marker.release, err: RackError.from(err).message }, 'push left in flight could not be mended');
      }
    }
  }

  private async compare(marker: PushMarker, out: UserOutput): Promise<PushOutcome> {
    const app = await this.store.getApp(marker.app);
    if (!app || app.currentRelease !== marker.release) return 'not-serving';
    const repo = this.repoOf(marker.app);
    const head = await headCommit(repo, marker.branch);
    if (head === marker.commit) return 'consistent';
    const short = marker.commit.slice(0, 7);
    this.log.warn({ app: marker.app, release: marker.release, commit: marker.commit, head }, 'released push did not reach its branch');
    if (await hasCommit(repo, marker.commit)) {
      try {
        await updateRef(repo, marker.branch, marker.commit, marker.oldRev);
        out.header(`${marker.branch} moved to ${short}, the commit v${marker.release} serves (git did not finish the push)`);
        return 'branch-moved';
      } catch (err) {
        this.log.warn({ app: marker.app, err: String(err) }, 'could not move the branch; rolling back instead');
      }
    }
    const release = await this.pipeline.revertPush({ app: marker.app, release: marker.release, commit: marker.commit, branch: marker.branch }, out);
    return release ? 'rolled-back' : 'not-serving';
  }
}
