import type { Caller } from '../access/principal.js';
import type { AuditLog } from '../audit/audit-log.js';
import { deployBranch } from '../git/deploy-branch.js';
import type { PushCheck, PushOutcome } from '../git/push-check.js';
import type { PushLock } from '../git/push-lock.js';
import type { PushPipeline } from '../git/push-pipeline.js';
import { ensureBareRepo, headCommit, setHeadBranch, updateRef } from '../git/repo.js';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import type { DeliveryOutcome, PushMarker } from '../store/records.js';
import type { Store } from '../store/store.js';
import { textOutput } from '../user-output.js';
import type { CommitStatuses, StatusState } from './commit-status.js';
import { reviewAppName, type ReviewApps } from './review-apps.js';
import type { PullRequestChange, RepoHost, VerifiedDelivery } from './webhook-delivery.js';

const NO_BRANCH = '0'.repeat(40);

export interface RepoDeploysOptions {
  store: Store;
  pipeline: PushPipeline;
  pushLock: PushLock;
  check: PushCheck;
  reposRoot: string;
  /** Fetches `ref` (default: the link's branch) of `app`'s connected repository into `repo`; resolves with the commit it points at. */
  fetch: (app: string, repo: string, ref?: string) => Promise<string>;
  reviewApps: ReviewApps;
  /** Review apps' states posted back to the host as commit statuses (links with a token). */
  statuses: CommitStatuses;
  /** An app's URL, as `reviewapps` shows it: the status's link. */
  appUrl: (app: string) => string;
  /** Destroys an app as `apps:destroy` does, for `caller` (a closed pull request's review app). */
  destroyApp: (name: string, caller: Caller) => Promise<void>;
  audit: AuditLog;
  log: Logger;
}

/** What a delivery asks for: a push of the branch, or a pull request's review app. */
export type DeployRequest = VerifiedDelivery & ({ push: { branch: string; commit: string } } | { pullRequest: PullRequestChange });

interface Done {
  result: string;
  release?: number;
  outcome?: PushOutcome;
}

/**
 * Deploys what a connected repository's webhook announced, as a `git push` would be: under the
 * target app's push lock, the branch (or the pull request's head) fetched, and only if the
 * announced commit is still its head, the same pipeline (build → release → deploy) with a push
 * marker, then the app's branch moved to the commit and checked against what serves
 * (git/push-check.ts). Deliveries are taken in the background: the host was answered 202.
 */
export class RepoDeploys {
  private readonly running = new Set<Promise<void>>();
  private stopping = false;

  constructor(private readonly opts: RepoDeploysOptions) {}

  /** rackd is stopping: deliveries not yet under the push lock are skipped. */
  refuseNew(): void {
    this.stopping = true;
  }

  /** Resolves once every delivery taken has been dealt with. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Takes a verified delivery; the outcome goes to repo:info, the operator log and the audit log. */
  take(app: string, delivery: DeployRequest, address: string, receivedAt: number): void {
    const task = this.run(app, delivery, address, receivedAt).finally(() => this.running.delete(task));
    this.running.add(task);
  }

  private async run(app: string, delivery: DeployRequest, address: string, receivedAt: number): Promise<void> {
    const { store, log } = this.opts;
    const source = `${delivery.host} delivery ${delivery.id}`;
    const pr = 'pullRequest' in delivery ? delivery.pullRequest : undefined;
    const commit = pr ? pr.commit : (delivery as { push: { commit: string } }).push.commit;
    // The receiver checked the review app's name already: this cannot throw here.
    const target = pr ? reviewAppName(app, pr.number) : app;
    const caller: Caller = { principal: { kind: 'webhook', name: source, role: 'deploy', apps: [target] }, via: 'http', address };
    let result = 'failed: interrupted';
    let auditOutcome = 'ok';
    let release: number | undefined;
    try {
      const done = await this.opts.pushLock.run(target, async (): Promise<Done> => {
        if (this.stopping) return { result: 'skipped: rack was restarting; push again to deploy' };
        const link = await store.repos.get(app);
        if (!link) return { result: 'skipped: the repository was disconnected' };
        if (!pr) {
          if (link.branch !== (delivery as { push: { branch: string } }).push.branch) return { result: 'skipped: the connected branch changed' };
          return this.deployCommit(app, app, undefined, commit, source, receivedAt, delivery.host);
        }
        if (pr.action === 'close') {
          if (!(await store.getApp(target))) return { result: `ignored: ${target} does not exist` };
          // Listed first: apps:destroy detaches them and forgets whom they were made for.
          const addons = await this.opts.reviewApps.ownedAddons(target);
          await this.opts.destroyApp(target, { ...caller, principal: { ...caller.principal, role: 'admin', apps: [] } });
          await this.opts.reviewApps.destroyAddons(addons);
          return { result: `destroyed ${target}${addons.length > 0 ? ` and ${addons.join(', ')}` : ''}` };
        }
        if (!link.reviewApps) return { result: 'ignored: review apps are off (reviewapps:enable)' };
        const done = await this.deployCommit(app, target, pr.ref, commit, source, receivedAt, delivery.host);
        return { ...done, result: done.release === undefined ? done.result : `${done.result.replace(/ v/, ` ${target} v`)}` };
      });
      result = done.result;
      release = done.release;
      if (done.release === undefined && !result.startsWith('destroyed')) auditOutcome = 'skipped';
      else if (done.outcome === 'rolled-back') auditOutcome = 'rolled_back';
    } catch (err) {
      const error = RackError.from(err);
      result = `failed: ${error.message}`;
      auditOutcome = error.code;
    } finally {
      log.info({ app, target, delivery: delivery.id, host: delivery.host, commit, release, result }, 'webhook delivery dealt with');
      const outcome: DeliveryOutcome = { id: delivery.id, host: delivery.host, event: delivery.event, at: new Date().toISOString(), commit, result };
      // What failed (or never ran) may be tried again with the host's "redeliver": its ID is forgotten
      // before the outcome is shown, so a redelivery prompted by it is never taken for a duplicate.
      if (result.startsWith('failed') || result.startsWith('skipped: rack was restarting')) {
        await store.repos.forgetDelivery(app, delivery.id).catch((err: unknown) => log.warn({ app, err: String(err) }, 'could not forget a failed delivery'));
      }
      await store.repos.setOutcome(app, outcome).catch((err: unknown) => log.warn({ app, err: String(err) }, 'could not record the delivery\'s outcome'));
      await this.opts.audit.record(caller, {
        app: target,
        action: pr ? `reviewapps:${pr.action === 'close' ? 'destroy' : 'deploy'}` : 'repo:deploy',
        detail: release === undefined ? `${commit.slice(0, 7)}: ${result}` : `v${release} ${commit.slice(0, 7)}`,
        outcome: auditOutcome,
      });
    }
  }

  /**
   * Under `target`'s push lock: fetches `ref` of `app`'s repository (its branch when undefined) into
   * `target`'s repo and, when `commit` is still its head, deploys it as a push of the deploy branch.
   * A review app is made here, from the fetched commit, before its first release.
   */
  private async deployCommit(app: string, target: string, ref: string | undefined, commit: string, source: string, receivedAt: number, host: RepoHost): Promise<Done> {
    const { store, check, log } = this.opts;
    const repo = await ensureBareRepo(this.opts.reposRoot, target);
    if (await store.getApp(target)) await check.retryPending(target);
    const head = await this.opts.fetch(app, repo, ref);
    if (head !== commit) {
      log.info({ app: target, commit, head }, 'webhook commit skipped: no longer the head of its branch');
      return { result: `skipped: ${ref === undefined ? (await store.repos.get(app))?.branch ?? 'the branch' : ref} is now at ${head.slice(0, 7)}, not ${commit.slice(0, 7)}` };
    }
    if (target === app) return this.deployFetched(target, repo, commit, source, receivedAt);
    // A review app: its state goes back to the host beside the commit, whatever comes of it.
    const link = await store.repos.get(app);
    const status = (state: StatusState, description: string) => {
      if (link) this.opts.statuses.post(link, host, commit, { state, targetUrl: this.opts.appUrl(target), description });
    };
    status('pending', `Deploying ${target}`);
    try {
      const settings = await this.opts.reviewApps.prepare(app, target, repo, commit, `webhook ${source}`);
      const done = await this.deployFetched(target, repo, commit, source, receivedAt);
      if (done.release === undefined) {
        status('success', `${target}: ${done.result}`);
        return done;
      }
      if (done.outcome === 'rolled-back') {
        status('failure', `${target}: ${done.result}`);
        return done;
      }
      const after = await this.opts.reviewApps.afterDeploy(target, done.release, settings);
      if (after.postdeploy !== 'none' && after.postdeploy !== 'ok') {
        status('failure', `${target} v${done.release} serves; postdeploy failed: ${after.postdeploy}`);
        return { ...done, result: `${done.result} (postdeploy failed: ${after.postdeploy})` };
      }
      status('success', `${target} v${done.release} serves ${commit.slice(0, 7)}`);
      return done;
    } catch (err) {
      status('failure', `${target}: ${RackError.from(err).message}`);
      throw err;
    }
  }

  /** The fetched `commit` in `target`'s repo deployed as a push of its deploy branch; the push lock is held. */
  private async deployFetched(target: string, repo: string, commit: string, source: string, receivedAt: number): Promise<Done> {
    const { store, check, log } = this.opts;
    const record = await store.requireApp(target);
    const branch = (await deployBranch(record, repo)) ?? 'main';
    const oldRev = await headCommit(repo, branch);
    if (oldRev === commit) return { result: `skipped: ${commit.slice(0, 7)} is already deployed` };
    const lines = (line: string) => log.debug({ app: target, line }, 'webhook deploy output');
    let marker: PushMarker | undefined;
    let version: number;
    try {
      const release = await this.opts.pipeline.push(
        { app: target, commit, repo, objects: {}, keyName: `webhook ${source}`, receivedAt },
        textOutput(lines),
        undefined,
        async (made) => {
          if (record.branch === undefined) {
            await store.setAppBranch(target, branch);
            await setHeadBranch(repo, branch);
          }
          marker = { app: target, release: made.version, commit, branch, oldRev: oldRev ?? NO_BRANCH, createdAt: new Date().toISOString() };
          await store.putPushMarker(marker);
        },
      );
      version = release.version;
      // The branch follows what serves, as git's ref update does after a push's hook.
      await updateRef(repo, branch, commit, oldRev ?? NO_BRANCH).catch((err: unknown) => {
        log.warn({ app: target, err: String(err) }, 'could not move the deploy branch to the webhook\'s commit');
      });
    } catch (err) {
      // A rollout that failed leaves its marker: the check finds the release not serving and clears it.
      if (marker) await check.settle(marker).catch(() => undefined);
      throw err;
    }
    // The check of a push: the branch against what serves, mended if they differ; the marker goes.
    const outcome = await check.settle(marker!);
    if (outcome === 'rolled-back') return { result: `rolled back: ${commit.slice(0, 7)} could not reach ${branch}`, release: version, outcome };
    return { result: `deployed v${version}`, release: version, outcome };
  }
}
