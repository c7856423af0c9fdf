import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import type { PushMarker } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { UserOutput } from '../user-output.js';
import type { PushPipeline } from './push-pipeline.js';
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
    private readonly pipeline: PushPipeline,
    private readonly repoOf: (app: string) => string,
    private readonly log: Logger,
  ) {}

  /**
   * Compares and mends; the marker goes only once that has worked. A repair that failed (the branch
   * could not move and the rollback failed) keeps it, with the error, so it is tried again: at the
   * next start, and before the app's next push.
   */
  async settle(marker: PushMarker, out: UserOutput = quiet): Promise<PushOutcome> {
    let outcome: PushOutcome;
    try {
      outcome = await this.compare(marker, out);
    } catch (err) {
      await this.store
        .putPushMarker({ ...marker, lastError: RackError.from(err).message, failedAt: new Date().toISOString() })
        .catch((storeErr: unknown) => this.log.error({ app: marker.app, err: String(storeErr) }, 'could not record the failed push check'));
      throw err;
    }
    await this.store.clearPushMarker(marker.app);
    return outcome;
  }

  /** At start: markers left by a rackd that died between a push's rollout and its check, or kept by a failed repair. */
  async recover(): Promise<void> {
    for (const marker of await this.store.listPushMarkers()) await this.retry(marker);
  }

  /** Under the app's push lock, before a push: a marker still there is checked again first. */
  async retryPending(app: string): Promise<void> {
    const marker = await this.pending(app);
    if (marker) await this.retry(marker);
  }

  /** The app's marker, if a push has not been checked (in flight, or its repair failed). */
  async pending(app: string): Promise<PushMarker | undefined> {
    return (await this.store.listPushMarkers()).find((m) => m.app === app);
  }

  private async retry(marker: PushMarker): Promise<void> {
    try {
      const outcome = await this.settle(marker);
      this.log.info({ app: marker.app, release: marker.release, commit: marker.commit, outcome }, 'push left in flight checked');
    } catch (err) {
      this.log.error({ app: marker.app, release: marker.release, err: RackError.from(err).message }, 'push left in flight could not be mended');
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

/** `apps:info`'s line for a marker: a push released whose branch check has not succeeded yet. */
export function describePendingCheck(marker: PushMarker): string {
  const what = `v${marker.release} (${marker.commit.slice(0, 7)} on ${marker.branch})`;
  if (marker.lastError === undefined) return `pending since ${marker.createdAt}: ${what} is being checked against its branch`;
  return `pending since ${marker.createdAt}: ${what} could not be mended (last try ${marker.failedAt ?? '?'}: ${marker.lastError}); retried at the next push or start`;
}
