import type { RackBuild, RackReleaseRecord } from '../store/records.js';
import type { RackReleaseStore } from '../store/rack-release-store.js';
import { describeBuild } from './rack-build.js';

const sameBuild = (a: RackBuild, b: RackBuild) => a.version === b.version && a.commit === b.commit;

/** Why a pending update or rollback did not end with this rackd's start, when the rackd that started it knows. */
export interface SwitchFailure {
  step: string;
  error: string;
}

/**
 * At start, once rackd is ready. A pending entry (an update or rollback under way when the last
 * rackd let go) is finished: succeeded when this rackd is the build it went to, with the time this
 * start took; failed otherwise (the new rackd did not start, and this one came back in its place,
 * or a crash cut the update short). Then an entry is added when this rack is not the one that last
 * ran (its first install, or an update made by hand, outside `rack:update`), so the ledger is never
 * empty once rack has run; none when the last that succeeded is this build.
 * @param startedAt when this rackd's process started: the entry's duration is its start's.
 */
export async function noteRunningRack(
  ledger: RackReleaseStore,
  build: RackBuild,
  schema: number,
  startedAt: Date,
  installDir: string,
  failure?: SwitchFailure,
): Promise<RackReleaseRecord | undefined> {
  const newest = await ledger.latest();
  if (newest?.status === 'pending') {
    if (sameBuild(newest, build)) return ledger.finish(newest.id, 'succeeded', { phases: [{ name: 'start', ms: Date.now() - startedAt.getTime() }], schema });
    await ledger.finish(newest.id, 'failed', {
      failedStep: failure?.step ?? 'interrupted',
      error: failure?.error ?? `rackd stopped before ${describeBuild(newest)} was serving`,
    });
  }
  const last = await ledger.latest((r) => r.status === 'succeeded');
  if (last && sameBuild(last, build)) return undefined;
  const now = new Date();
  const from = last ? { version: last.version, commit: last.commit } : null;
  return ledger.create({
    version: build.version,
    commit: build.commit,
    from,
    kind: from ? 'start' : 'install',
    description: from ? `Started as ${describeBuild(build)}, was ${describeBuild(from)}` : `Install ${describeBuild(build)}`,
    createdBy: 'rackd',
    createdAt: startedAt.toISOString(),
    status: 'succeeded',
    finishedAt: now.toISOString(),
    durationMs: now.getTime() - startedAt.getTime(),
    failedStep: null,
    error: null,
    schema,
    dir: installDir,
  });
}
