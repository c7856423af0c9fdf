import type { Services } from '../commands/command.js';
import type { HttpHandler, PublicHandler } from '../http/http-server.js';
import { answerJson } from '../http/json-answer.js';
import { RackError } from '../rack-error.js';

/** `/api/v1/...`: the resources (to be filled in by the API routes). */
export function apiHandler(_services: Services): HttpHandler {
  return async (_req, _res, url) => {
    throw new RackError('not_found', `no API resource at ${url.pathname.slice(0, 100)}`);
  };
}

/** What answers without a token. */
export function publicPaths(services: Services): Record<string, PublicHandler> {
  return {
    '/': async (_req, res) => answerJson(res, 200, { name: 'rack', version: services.version, api: '/api/v1/' }),
  };
}
