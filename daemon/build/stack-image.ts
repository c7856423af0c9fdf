import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import type { DockerRuntime } from '../runtime/docker-runtime.js';
import { lineSplitter } from '../line-splitter.js';

export const STACK_IMAGE = 'rack/stack:latest';

/** No registry can be pulled from, so the base image is made here when it is missing. */
export async function ensureStackImage(runtime: DockerRuntime, installDir: string, log: Logger): Promise<void> {
  if (await runtime.imageExists(STACK_IMAGE)) return;
  log.info({ image: STACK_IMAGE }, 'stack image missing: building it (takes a minute or two)');
  const script = join(installDir, 'scripts', 'make-stack.sh');
  await new Promise<void>((resolve, reject) => {
    const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = lineSplitter((line) => log.info({ stack: line }));
    child.stdout.on('data', (c: Buffer) => lines.push(c));
    child.stderr.on('data', (c: Buffer) => lines.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      lines.end();
      if (code === 0) resolve();
      else reject(new RackError('stack_failed', `scripts/make-stack.sh failed with status ${code}`));
    });
  });
}
