import type { RackErrorCode } from '../rack-error.js';

/** The HTTP status of each of rackd's error codes: the API answers with the codes ssh prints. */
export const HTTP_STATUS: Record<RackErrorCode, number> = {
  bad_config: 500,
  bad_command: 400,
  bad_argument: 400,
  bad_app_name: 400,
  app_required: 400,
  app_exists: 409,
  no_such_app: 404,
  no_such_build: 404,
  no_such_release: 404,
  forbidden: 403,
  unauthorized: 401,
  throttled: 429,
  not_found: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  unsupported_media_type: 415,
  bad_ref: 400,
  build_failed: 422,
  deploy_failed: 422,
  docker_unavailable: 503,
  stack_failed: 500,
  router_failed: 502,
  internal: 500,
};
