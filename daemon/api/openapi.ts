import { HTTP_STATUS } from '../http/http-status.js';
import { ROUTES, type ApiRoute } from './routes.js';
import * as S from './schemas.js';

const ERROR_RESPONSE = { description: 'An error: a stable code and one line for people', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };

function successContent(route: ApiRoute): Record<string, unknown> {
  switch (route.mode) {
    case 'text':
      return { 'text/plain': { schema: S.text } };
    case 'stream':
      return {
        'application/x-ndjson': { schema: { $ref: '#/components/schemas/StreamEvent' }, 'x-result': route.response },
        // A question to a change route (rack:update's check) is answered whole.
        ...(route.asks ? { 'application/json': { schema: route.asks.response } } : {}),
      };
    default:
      return {
        'application/json': { schema: route.response },
        ...(route.follows ? { 'application/x-ndjson': { schema: { $ref: '#/components/schemas/StreamEvent' } } } : {}),
      };
  }
}

function operation(route: ApiRoute, version: string): Record<string, unknown> {
  const params = [...route.path.matchAll(/\{([a-z]+)\}/g)].map((m) => ({
    name: m[1],
    in: 'path',
    required: true,
    schema: m[1] === 'app' ? S.appName : S.text,
  }));
  const query = Object.entries(route.query ?? {}).map(([name, schema]) => ({ name, in: 'query', required: false, schema }));
  return {
    operationId: route.command.replace(/:/g, '_'),
    summary: route.summary,
    description: `The API form of \`ssh rack ${route.command}\` (rack ${version}).`,
    parameters: [...params, ...query],
    ...(route.body ? { requestBody: { required: false, content: { 'application/json': { schema: route.body } } } } : {}),
    ...(route.upload ? { requestBody: { required: true, content: Object.fromEntries(route.upload.map((type) => [type, { schema: { type: 'string', contentMediaType: type } }])) } } : {}),
    responses: {
      [String(route.status ?? 200)]: {
        description:
          route.mode === 'stream'
            ? 'NDJSON, one object per line: {"line"} as the work goes, then {"result"} (its schema: x-result); or {"error"}, after which the connection is cut so that clients see the failure'
            : 'Done',
        content: successContent(route),
      },
      ...Object.fromEntries([400, 401, 403, 404, 405, 413, 415, 429].map((s) => [String(s), ERROR_RESPONSE])),
      default: ERROR_RESPONSE,
    },
  };
}

interface Operation {
  summary: string;
  description: string;
  parameters: { name: string }[];
  requestBody?: { required: boolean; content: Record<string, unknown> };
  responses: Record<string, { content?: Record<string, { 'x-result'?: unknown }> }>;
}

/**
 * One operation for two routes on the same method and path, told apart by the body's content type
 * (`POST /apps/{app}/builds`: JSON rebuilds the branch, a .tar.gz builds that source).
 */
function alongside(first: Operation, second: Operation): Operation {
  const names = new Set(first.parameters.map((p) => p.name));
  const responses = { ...first.responses };
  for (const [status, answer] of Object.entries(second.responses)) {
    const a = first.responses[status]?.content?.['application/x-ndjson'];
    const b = answer.content?.['application/x-ndjson'];
    if (a && b) responses[status] = { ...first.responses[status], content: { 'application/x-ndjson': { ...a, 'x-result': { oneOf: [a['x-result'], b['x-result']] } } } };
  }
  return {
    ...first,
    summary: `${first.summary}; or ${second.summary.charAt(0).toLowerCase()}${second.summary.slice(1)}`,
    description: `${first.description} With a .tar.gz body: ${second.description}`,
    parameters: [...first.parameters, ...second.parameters.filter((p) => !names.has(p.name))],
    requestBody: { required: false, content: { ...first.requestBody?.content, ...second.requestBody?.content } },
    responses,
  };
}

/** The OpenAPI 3.1 document of /api/v1, made from the route table and its schemas. */
export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of ROUTES) {
    const methods = (paths[route.path] ??= {});
    const method = route.method.toLowerCase();
    const op = operation(route, version);
    methods[method] = methods[method] ? alongside(methods[method] as unknown as Operation, op as unknown as Operation) : op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'rack',
      version,
      description:
        'The HTTP side of rack: the same resources, rights and audit log as `ssh rack`. Authenticate with `Authorization: Bearer TOKEN` (`ssh rack tokens:create`). Error codes: ' +
        Object.entries(HTTP_STATUS).map(([code, status]) => `${code} (${status})`).join(', ') + '.',
    },
    servers: [{ url: '/api/v1' }],
    security: [{ bearerAuth: [] }],
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'A rack_ token from ssh rack tokens:create' } },
      schemas: { Error: S.error, StreamEvent: S.streamEvent },
    },
    paths,
  };
}
