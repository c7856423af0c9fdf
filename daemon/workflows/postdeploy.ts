import { lineSplitter } from '../line-splitter.js';
import type { LogHub } from '../logs/log-hub.js';
import { RackError } from '../rack-error.js';
import { forProcess, limitsFor } from '../runtime/isolation.js';
import { containerCommand } from '../runtime/process-command.js';
import type { Runtime } from '../runtime/runtime.js';
import type { Store } from '../store/store.js';

const POSTDEPLOY_TIMEOUT_MS = 10 * 60_000;

/**
 * app.json's `scripts.postdeploy` of a review app (seed data, say): a one-off of the app's current
 * release, in its image with its config, on its network under its web processes' limits, as the
 * release phase runs. It is labelled a release task of that release, so a rackd that stops
 * mid-way finds and removes it at start as it does a release phase's. Every line goes to the
 * app's log as `rack[postdeploy]`. Resolves with the exit status.
 */
export async function runPostdeploy(runtime: Runtime, logs: LogHub, store: Store, app: string, command: string): Promise<number> {
  const record = await store.requireApp(app);
  const release = record.currentRelease ? await store.getRelease(app, record.currentRelease) : undefined;
  if (!release) throw new RackError('no_such_release', `${app} has no running release`);
  const tell = (text: string) => logs.push({ time: new Date().toISOString(), app, source: 'rack[postdeploy]', type: 'postdeploy', text });
  tell(`Running postdeploy: ${command}`);
  const lines = lineSplitter(tell);
  const run = await runtime.tasks.runTask({
    app,
    role: 'release',
    id: release.version,
    image: release.image,
    cmd: containerCommand(release.builder, command),
    env: release.config,
    network: await runtime.networks.ensure(app),
    confine: forProcess(limitsFor('web', record.limits)),
    onOutput: (chunk) => lines.push(chunk),
    timeoutMs: POSTDEPLOY_TIMEOUT_MS,
  });
  lines.end();
  await runtime.removeContainer(run.container);
  tell(run.exitCode === 0 ? 'postdeploy done' : `postdeploy failed (exit status ${run.exitCode})`);
  return run.exitCode;
}
