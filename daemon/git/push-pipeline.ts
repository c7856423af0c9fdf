import type { ReleaseRecord } from '../store/records.js';
import type { UserOutput } from '../user-output.js';
import type { GitObjectEnv } from './repo.js';

export interface PushRequest {
  app: string;
  commit: string;
  repo: string;
  objects: GitObjectEnv;
  keyName: string;
  /** When git started receiving the push: the receive phase runs from then until the build. */
  receivedAt?: number;
}

/**
 * Where receive hands a push over: build → release → deploy, and the undoing of a push whose
 * commit never reached its branch. Declared here, on git's side, so that git/ depends on no
 * module above it; `Pipeline` (pipeline.ts) is what fills it.
 */
export interface PushPipeline {
  push(
    req: PushRequest,
    out: UserOutput,
    interrupted?: AbortSignal,
    beforeRollout?: (release: ReleaseRecord) => Promise<void>,
  ): Promise<ReleaseRecord>;
  revertPush(req: { app: string; release: number; commit: string; branch: string }, out: UserOutput): Promise<ReleaseRecord | undefined>;
}
