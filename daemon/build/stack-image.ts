import { join } from 'node:path';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import type { DockerRuntime } from '../runtime/docker-runtime.js';
import { runScript } from '../run-script.js';

/** What builds run in: buildpacks' tools, compilers, -dev libraries. */
export const STACK_IMAGE = 'rack/stack:latest';
/** What an app's built /app is copied onto: the same system without the build tools. */
export const STACK_RUN_IMAGE = 'rack/stack-run:latest';

/** No registry can be pulled from, so the stack images are made here when one is missing. */
export async function ensureStackImage(runtime: DockerRuntime, installDir: string, log: Logger): Promise<void> {
  if ((await runtime.imageExists(STACK_IMAGE)) && (await runtime.imageExists(STACK_RUN_IMAGE))) return;
  log.info({ images: [STACK_IMAGE, STACK_RUN_IMAGE] }, 'stack images missing: building them (takes a few minutes)');
  const code = await runScript(join(installDir, 'scripts', 'make-stack.sh'), [], (line) => log.info({ stack: line }));
  if (code !== 0) throw new RackError('stack_failed', `scripts/make-stack.sh failed with status ${code}`);
}
