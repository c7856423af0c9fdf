import type { ProcessLimits } from '../runtime/isolation.js';
import type { ProcessSpec } from '../runtime/runtime.js';
import type { ReleaseRecord } from '../store/records.js';

/** The port every web process listens on inside its container. */
export const WEB_PORT = 5000;

/** Process `index` (from 1) of a type of a release: what a rollout and a replacement start alike. */
export function processSpec(release: ReleaseRecord, type: string, index: number, network: string, limits: ProcessLimits): ProcessSpec {
  return {
    app: release.app,
    release: release.version,
    type,
    dyno: `${type}.${index}`,
    image: release.image,
    builder: release.builder,
    command: release.processTypes[type]!,
    // As on Heroku: the process's type and number (web.1), set by the platform.
    env: { ...release.config, DYNO: `${type}.${index}` },
    port: type === 'web' ? WEB_PORT : undefined,
    network,
    limits,
  };
}
