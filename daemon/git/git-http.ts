import type { HttpHandler } from '../http/http-server.js';
import { RackError } from '../rack-error.js';

/** git's smart HTTP protocol (to be filled in: `git http-backend` behind the token check). */
export class GitHttp {
  readonly handle: HttpHandler = async () => {
    throw new RackError('not_found', 'git over HTTP is not served yet');
  };
}
