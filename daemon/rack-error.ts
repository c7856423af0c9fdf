/**
 * The one error class of rack. `code` is a stable string that tests and clients may match on;
 * `message` is the one line a user sees after ` !     `.
 */
export type RackErrorCode =
  | 'bad_config'
  | 'bad_command'
  | 'bad_argument'
  | 'bad_app_name'
  | 'app_required'
  | 'app_exists'
  | 'app_busy'
  | 'domain_taken'
  | 'domain_reserved'
  | 'no_such_app'
  | 'no_such_build'
  | 'no_such_release'
  | 'no_such_addon'
  | 'no_such_drain'
  | 'no_such_webhook'
  | 'addon_exists'
  | 'addon_unavailable'
  | 'addon_failed'
  | 'no_such_job'
  | 'job_failed'
  | 'forbidden'
  | 'unauthorized'
  | 'throttled'
  | 'not_found'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'bad_ref'
  | 'build_failed'
  | 'deploy_failed'
  | 'docker_unavailable'
  | 'stack_failed'
  | 'router_failed'
  | 'not_a_swarm'
  | 'no_such_node'
  | 'no_such_pipeline'
  | 'timed_out'
  | 'store_failed'
  | 'store_too_new'
  | 'restarting'
  | 'update_failed'
  | 'not_launched'
  | 'internal';

export class RackError extends Error {
  readonly code: RackErrorCode;
  /** Process exit status a user's client sees. */
  readonly exitCode: number;

  constructor(code: RackErrorCode, message: string, options?: { cause?: unknown; exitCode?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RackError';
    this.code = code;
    this.exitCode = options?.exitCode ?? 1;
  }

  static from(err: unknown): RackError {
    if (err instanceof RackError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new RackError('internal', `internal error: ${message}`, { cause: err });
  }
}
