import type { RackBuild, RackReleaseRecord } from '../store/records.js';
import type { RackReleaseStore } from '../store/rack-release-store.js';
import { describeBuild } from './rack-build.js';

/**
 * At start, once rackd is ready: an entry in the ledger when this rack is not the one the last
 * entry names (its first install, or an update made by hand, outside `rack:update`), so the ledger
 * is never empty once rack has run and its last entry is what runs. An update through rack:update
 * opened its own entry for this build already, so nothing is added then.
 * @param startedAt when this rackd's process started: the entry's duration is its start's.
 */
export async function noteRunningRack(ledger: RackReleaseStore, build: RackBuild, schema: number, startedAt: Date): Promise<RackReleaseRecord | undefined> {
  const last = await ledger.latest();
  if (last && last.version === build.version && last.commit === build.commit) return undefined;
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
