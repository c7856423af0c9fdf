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
import type { VerifiedDelivery } from './webhook-delivery.js';

const NO_BRANCH = '0'.repeat(40);

export interface RepoDeploysOptions {
  store: Store;
  pipeline: PushPipeline;
  pushLock: PushLock;
  check: PushCheck;
  reposRoot: string;
  /** Fetches the link's branch into the app's repo; resolves with the commit it points at. */
  fetch: (app: string, repo: string) => Promise<string>;
  audit: AuditLog;
  log: Logger;
}

/**
 * Deploys what a connected repository's webhook announced, as a `git push` would be: under the
 * app's push lock, the branch fetched, and only if the announced commit is still its head, the
 * same pipeline (build → release → deploy) with a push marker, then the app's branch moved to
 * the commit and checked against what serves (git/push-check.ts). Deliveries are taken in the
 * background: the host was answered 202 when the delivery was checked.
 */
export class RepoDeploys {
  private readonly running = new Set<Promise<void>>();
  private stopping = false;

  constructor(private readonly opts: RepoDeploysOptions) {}

  /** rackd is stopping: deliveries not yet under the push lock are skipped (the host may redeliver). */
  refuseNew(): void {
    this.stopping = true;
  }

  /** Resolves once every delivery taken has been dealt with. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Takes a verified push of the deploy branch; the outcome goes to repo:info, the operator log and the audit log. */
  take(app: string, delivery: VerifiedDelivery & { push: { branch: string; commit: string } }, address: string, receivedAt: number): void {
    const task = this.deploy(app, delivery, address, receivedAt).finally(() => this.running.delete(task));
    this.running.add(task);
  }

  private async deploy(app: string, delivery: VerifiedDelivery & { push: { branch: string; commit: string } }, address: string, receivedAt: number): Promise<void> {
    const { store, log } = this.opts;
    const source = `${delivery.host} delivery ${delivery.id}`;
    const commit = delivery.push.commit;
    const caller: Caller = { principal: { kind: 'webhook', name: source, role: 'deploy', apps: [app] }, via: 'http', address };
    const outcome = (result: string): DeliveryOutcome => ({ id: delivery.id, host: delivery.host, event: delivery.event, at: new Date().toISOString(), commit, result });
    let result = 'failed: interrupted';
    let auditOutcome = 'ok';
    let release: number | undefined;
    try {
      const done = await this.opts.pushLock.run(app, () => this.underLock(app, delivery, source, receivedAt));
      result = done.result;
      release = done.release;
      if (done.release === undefined) auditOutcome = 'skipped';
      else if (done.outcome === 'rolled-back') auditOutcome = 'rolled_back';
    } catch (err) {
      const error = RackError.from(err);
      result = `failed: ${error.message}`;
      auditOutcome = error.code;
    } finally {
      log.info({ app, delivery: delivery.id, host: delivery.host, commit, release, result }, 'webhook deploy finished');
      await store.repos.setOutcome(app, outcome(result)).catch((err: unknown) => log.warn({ app, err: String(err) }, 'could not record the delivery\'s outcome'));
      await this.opts.audit.record(caller, {
        app,
        action: 'repo:deploy',
        detail: release === undefined ? `${commit.slice(0, 7)}: ${result}` : `v${release} ${commit.slice(0, 7)}`,
        outcome: auditOutcome,
      });
    }
  }

  private async underLock(
    app: string,
    delivery: VerifiedDelivery & { push: { branch: string; commit: string } },
    source: string,
    receivedAt: number,
  ): Promise<{ result: string; release?: number; outcome?: PushOutcome }> {
    const { store, check, log } = this.opts;
    const commit = delivery.push.commit;
    if (this.stopping) return { result: 'skipped: rack was restarting; push again to deploy' };
    const link = await store.repos.get(app);
    if (!link || link.branch !== delivery.push.branch) return { result: 'skipped: the repository was disconnected or its branch changed' };
    const repo = await ensureBareRepo(this.opts.reposRoot, app);
    await check.retryPending(app);
    const head = await this.opts.fetch(app, repo);
    if (head !== commit) {
      log.info({ app, delivery: delivery.id, commit, head }, 'webhook push skipped: no longer the head of its branch');
      return { result: `skipped: ${link.branch} is now at ${head.slice(0, 7)}, not ${commit.slice(0, 7)}` };
    }
    const record = await store.requireApp(app);
    const branch = (await deployBranch(record, repo)) ?? 'main';
    const oldRev = await headCommit(repo, branch);
    if (oldRev === commit) return { result: `skipped: ${commit.slice(0, 7)} is already deployed` };
    const lines = (line: string) => log.debug({ app, delivery: delivery.id, line }, 'webhook deploy output');
    let marker: PushMarker | undefined;
    let version: number;
    try {
      const release = await this.opts.pipeline.push(
        { app, commit, repo, objects: {}, keyName: `webhook ${source}`, receivedAt },
        textOutput(lines),
        undefined,
        async (made) => {
          if (record.branch === undefined) {
            await store.setAppBranch(app, branch);
            await setHeadBranch(repo, branch);
          }
          marker = { app, release: made.version, commit, branch, oldRev: oldRev ?? NO_BRANCH, createdAt: new Date().toISOString() };
          await store.putPushMarker(marker);
        },
      );
      version = release.version;
      // The branch follows what serves, as git's ref update does after a push's hook.
      await updateRef(repo, branch, commit, oldRev ?? NO_BRANCH).catch((err: unknown) => {
        log.warn({ app, err: String(err) }, 'could not move the deploy branch to the webhook\'s commit');
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
