import { lineSplitter } from '../line-splitter.js';
import type { LogHub } from '../logs/log-hub.js';
import { RackError } from '../rack-error.js';
import { forProcess, limitsFor } from '../runtime/isolation.js';
import { containerCommand } from '../runtime/process-command.js';
import type { Runtime } from '../runtime/runtime.js';
import type { AppRecord, ReleaseRecord } from '../store/records.js';
import type { UserOutput } from '../user-output.js';

const RELEASE_PHASE_TIMEOUT_MS = 10 * 60_000;

/**
 * The Procfile's `release:` command (migrations): run once, before anything of a new release
 * starts, as the app's web processes run; failing it fails the release. Its output goes to the
 * user and to the app's log.
 */
export async function runReleasePhase(
  runtime: Runtime,
  logs: LogHub,
  release: ReleaseRecord,
  command: string,
  app: AppRecord,
  out: UserOutput,
): Promise<void> {
  out.header(`Running release command: ${command}`);
  const lines = lineSplitter((line) => {
    out.detail(line);
    logs.push({ time: new Date().toISOString(), app: release.app, source: 'rack[release]', type: 'release', text: line });
  });
  const run = await runtime.tasks.runTask({
    app: release.app,
    role: 'release',
    id: release.version,
    image: release.image,
    cmd: containerCommand(release.builder, command),
    env: release.config,
    network: await runtime.networks.ensure(release.app),
    confine: forProcess(limitsFor('web', app.limits)),
    onOutput: (chunk) => lines.push(chunk),
    timeoutMs: RELEASE_PHASE_TIMEOUT_MS,
  });
  lines.end();
  await runtime.removeContainer(run.container);
  if (run.exitCode !== 0) {
    throw new RackError('deploy_failed', `the release command failed (exit status ${run.exitCode})`);
  }
}
