import { join } from 'node:path';
import type { Addons } from './addons/addons.js';
import { assertNewAppName } from './app-name.js';
import type { ScheduledJobs } from './cron/scheduled-jobs.js';
import { paths, type RackConfig } from './config.js';
import type { DeployLock } from './deploy-lock.js';
import { assertDefaultHostFree } from './domain-ownership.js';
import type { Drains } from './drains/drains.js';
import { moveFolder } from './folder-move.js';
import type { PushLock } from './git/push-lock.js';
import { repoDir } from './git/repo.js';
import type { Logger } from './log.js';
import type { LogHub } from './logs/log-hub.js';
import type { ProcessControl } from './process-control.js';
import { RackError } from './rack-error.js';
import type { DockerRuntime } from './runtime/docker-runtime.js';
import type { RenamedRecord } from './store/app-rename-ops.js';
import type { AppRecord } from './store/records.js';
import type { Store } from './store/store.js';
import type { Supervisor } from './supervisor/supervisor.js';
import type { UserOutput } from './user-output.js';

export interface AppRenameParts {
  config: RackConfig;
  store: Store;
  runtime: DockerRuntime;
  supervisor: Supervisor;
  processes: ProcessControl;
  pushLock: PushLock;
  lock: DeployLock;
  logs: LogHub;
  drains: Drains;
  addons: Addons;
  cron: Pick<ScheduledJobs, 'renamed'>;
  log: Logger;
}

/**
 * `apps:rename OLD NEW`. The store is the truth: every record moves to the new name in one batch
 * (`Store.renameApp`), so a crash leaves the app under one name or the other. What lives outside
 * the store follows it in steps that are each safe to run again:
 * - before the batch, every image `rack/OLD:*` is tagged `rack/NEW:*` too (the rewritten releases
 *   name those, so they must exist first; a crash before the batch leaves spare tags only);
 * - after it, folders are moved (repository, build cache, build and app logs), the current release
 *   is rolled out under the new name (new labels, the new app's network; the router switches the
 *   default and custom hosts to them at once, so a custom domain answers throughout), then the old
 *   name's route, processes, tags and network go, and the `renamed` record is marked settled.
 * A rackd that dies in between finds the record unsettled at its next start and runs the second
 * part again (`repair`): the batch said where everything belongs.
 */
export class AppRename {
  constructor(private readonly parts: AppRenameParts) {}

  async rename(from: string, to: string, remote: string, out: UserOutput): Promise<RenamedRecord> {
    const { store, pushLock, lock, runtime, config } = this.parts;
    await store.requireApp(from);
    const name = assertNewAppName(to);
    if (await store.getApp(name)) throw new RackError('app_exists', `app "${name}" already exists`);
    // Refused rather than queued: a rename behind a long build would surprise whoever pushed.
    if (pushLock.busy(from) || lock.busy(from)) throw new RackError('app_busy', `a push, build or deploy of ${from} is under way; rename it once that is done`);
    // Push locks before the deploy lock, as a push takes them; the new name's too, so no push
    // creates it meanwhile. Both in name order: a rename of b to a beside one of a to b cannot deadlock.
    const [first, second] = [from, name].sort();
    return pushLock.run(first!, () =>
      pushLock.run(second!, () =>
        lock.run(from, async () => {
          const vet = (apps: AppRecord[]) => assertDefaultHostFree(name, { domain: config.domain, consoleHost: config.consoleHost, apps: apps.filter((a) => a.name !== from) });
          vet(await store.listApps());
          const tagged: string[] = [];
          let renamed: RenamedRecord;
          try {
            for (const image of await runtime.listAppImages(from)) {
              const tag = image.tag.slice(`rack/${from}:`.length);
              await runtime.tagImage(image.tag, { repo: `rack/${name}`, tag });
              tagged.push(`rack/${name}:${tag}`);
            }
            // Checked again in the store's write turn: two renames to one name cannot both pass.
            renamed = await store.renameApp(from, name, remote, vet);
          } catch (err) {
            // Refused: the app stays as it was, without the names given to its images for the new one.
            for (const tag of tagged) await runtime.removeImage(tag).catch(() => false);
            throw err;
          }
          out.header(`Renamed ${from} to ${name}`);
          await this.follow(renamed, out);
          return renamed;
        }),
      ),
    );
  }

  /**
   * At start, once the apps are adopted (the old name's processes went as leftovers of an app the
   * store no longer has): renames a crash cut short are finished from the store's view.
   */
  async repair(out: UserOutput): Promise<void> {
    for (const renamed of await this.parts.store.unsettledRenames()) {
      if (!(await this.parts.store.getApp(renamed.to))) continue;
      this.parts.log.info({ from: renamed.from, to: renamed.to }, 'finishing a rename cut short');
      try {
        await this.follow(renamed, out);
      } catch (err) {
        // Kept unsettled: the next start tries again; the app is in the store under its new name meanwhile.
        this.parts.log.error({ from: renamed.from, to: renamed.to, err: String(err) }, 'could not finish a rename');
      }
    }
  }

  /** Everything outside the store, moved to where the store says; each step may run twice. */
  private async follow({ from, to }: RenamedRecord, out: UserOutput): Promise<void> {
    const { config, store, runtime, supervisor, processes, logs, drains, addons } = this.parts;
    await moveFolder(repoDir(paths.repos(config), from), repoDir(paths.repos(config), to));
    const cache = paths.cache(config);
    await moveFolder(join(cache, from), join(cache, to));
    await moveFolder(join(cache, `${from}.img`), join(cache, `${to}.img`));
    // A connected repository's deploy key (workflows/repo-fetch.ts keeps one folder per app).
    await moveFolder(join(config.home, 'repo-keys', from), join(config.home, 'repo-keys', to));
    await store.moveBuildLogs(from, to);
    await logs.rename(from, to);
    await drains.renameApp(from, to);
    await addons.joinRenamed(to);
    const app = await store.requireApp(to);
    if (app.currentRelease > 0) await processes.restart({ app: to, type: undefined }, out);
    else await supervisor.publish(to, []);
    await this.parts.cron.renamed(from, to);
    await supervisor.retire(from);
    await addons.leaveRenamed(from);
    // Its processes (the new ones serve), its remaining tags (each image has its new name too) and network.
    await runtime.removeApp(from);
    // The old processes' last lines, written after the folder moved, would greet a new app of the old name.
    await logs.remove(from);
    await store.settleRename(from);
  }
}
