import type { RackBuild, RackReleaseRecord } from '../store/records.js';
import type { RackReleaseStore } from '../store/rack-release-store.js';
import { describeBuild } from './rack-build.js';

const sameBuild = (a: RackBuild, b: RackBuild) => a.version === b.version && a.commit === b.commit;

/**
 * At start, once rackd is ready: an entry in the ledger when this rack is not the one that last
 * ran (its first install, or an update made by hand, outside `rack:update`), so the ledger is never
 * empty once rack has run. Nothing is added when the newest entry is this build still pending (the
 * rack:update that started it finishes it), nor when the last that succeeded is this build (an
 * update to another one failed, and this one went on running).
 * @param startedAt when this rackd's process started: the entry's duration is its start's.
 */
export async function noteRunningRack(ledger: RackReleaseStore, build: RackBuild, schema: number, startedAt: Date): Promise<RackReleaseRecord | undefined> {
  const newest = await ledger.latest();
  if (newest?.status === 'pending' && sameBuild(newest, build)) return undefined;
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
  });
}
