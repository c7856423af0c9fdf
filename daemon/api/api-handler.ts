import type { IncomingMessage, ServerResponse } from 'node:http';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { Caller } from '../access/principal.js';
import { assertAppName } from '../app-name.js';
import { findCommand, invoke, type CommandIo } from '../commands/command-runner.js';
import type { Services } from '../commands/command.js';
import type { HttpHandler, PublicHandler } from '../http/http-server.js';
import { answerError, answerJson } from '../http/json-answer.js';
import { RackError } from '../rack-error.js';
import { openApiDocument } from './openapi.js';
import { MAX_DISCARD_BYTES, readJsonBody } from './request-body.js';
import { matchRoute, ROUTES, type AnswerMode, type ApiRoute, type CommandWords } from './routes.js';

const PREFIX = '/api/v1';

const ajv = new Ajv2020({ allErrors: false, strict: false });
addFormats.default(ajv);
const bodyChecks = new Map<ApiRoute, ValidateFunction>(ROUTES.filter((r) => r.body).map((r) => [r, ajv.compile(r.body!)]));
const queryChecks = new Map<ApiRoute, ValidateFunction>(
  ROUTES.map((r) => [r, ajv.compile({ type: 'object', properties: r.query ?? {}, additionalProperties: false })]),
);

/** ajv's first complaint, as one line a person can act on. */
function complaint(where: string, check: ValidateFunction): RackError {
  const e = check.errors?.[0];
  const at = e?.instancePath ? ` at ${e.instancePath}` : '';
  const extra = e?.keyword === 'additionalProperties' ? `: unknown field "${String((e.params as { additionalProperty?: string }).additionalProperty)}"` : ` ${e?.message ?? 'is invalid'}`;
  return new RackError('bad_argument', `the ${where}${at}${extra}`);
}

/**
 * `/api/v1/...`: each request becomes the command it mirrors, run by `invoke()` for the caller, so
 * rights, checks and the audit log are those of ssh. Changes that roll out stream their lines.
 */
export function apiHandler(services: Services): HttpHandler {
  return async (req, res, url, caller) => {
    try {
      await serve(services, req, res, url, caller);
    } catch (err) {
      // A refused upload (no right, too large, a path trick) was not read to its end.
      if (!req.readableEnded) discardBody(req);
      const allow = (err as { allow?: string[] }).allow;
      if (res.headersSent) throw err;
      answerError(res, err, allow ? { Allow: allow.join(', ') } : {});
    }
  };
}

async function serve(services: Services, req: IncomingMessage, res: ServerResponse, url: URL, caller: Caller): Promise<void> {
  const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const { route, params } = matchRoute(req.method ?? 'GET', url.pathname.slice(PREFIX.length), contentType);
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const queryCheck = queryChecks.get(route)!;
  if (!queryCheck(query)) throw complaint('query', queryCheck);
  // A raw body is the command's to read, as it arrives (after the checks below and the access check).
  const body = route.upload ? {} : await readJsonBody(req);
  const bodyCheck = bodyChecks.get(route);
  if (bodyCheck ? !bodyCheck(body) : Object.keys(body).length > 0) {
    throw bodyCheck ? complaint('body', bodyCheck) : new RackError('bad_argument', `${route.method} ${route.path} takes no body`);
  }
  const command = findCommand(route.command)!;
  let app = '';
  // A command that only narrows to an app (audit) takes it as ?app=, as its -a.
  const appWord = params['app'] ?? (command.app === 'optional' ? (url.searchParams.get('app') ?? undefined) : undefined);
  if (appWord !== undefined) {
    app = assertAppName(appWord);
    await services.store.requireApp(app);
  }
  const input = { params, query: url.searchParams, body };
  const words = route.words(input);
  const mode: AnswerMode = route.follows?.(input) ? 'follow' : route.asks?.when(input) ? 'json' : route.mode;
  const invocation = { command, app: command.app ? app : '', args: words.args, flags: { ...words.flags, ...(command.json ? { json: true } : {}) } };
  const run = (io: Pick<CommandIo, 'stdout' | 'json' | 'following'>) =>
    invoke(services, caller, invocation, { ...io, readInput: stdinOf(words), closed: closedOf(res), ...(route.upload ? { body: req } : {}) });
  if (mode === 'stream' || mode === 'follow') return streamAnswer(res, run);

  let value: unknown;
  let text = '';
  await run({ stdout: (t) => (text += t), json: (v) => (value = v) });
  if (mode === 'text') {
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(text);
  } else if (mode === 'lines') {
    answerJson(res, 200, text.split('\n').slice(0, -1));
  } else {
    answerJson(res, route.status ?? 200, value ?? {});
  }
}

/**
 * Reads what is left of a refused request's body and drops it, so the client, still sending, reads
 * the refusal rather than a reset; past MAX_DISCARD_BYTES the connection is cut.
 */
function discardBody(req: IncomingMessage): void {
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_DISCARD_BYTES) req.socket.destroy();
  });
  req.on('error', () => undefined);
  req.resume();
}

function stdinOf(words: CommandWords): CommandIo['readInput'] {
  return async (max) => {
    const input = words.stdin ?? '';
    if (Buffer.byteLength(input) > max) throw new RackError('bad_argument', `input is over ${Math.round(max / 1024)} KiB`);
    return input;
  };
}

function closedOf(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => res.once('close', () => resolve()));
}

/**
 * NDJSON: a `{"line"}` per user line as it is printed, then `{"result"}`. A failure before the
 * first line is an ordinary error answer with its status. After it, the status is long sent: the
 * stream ends with `{"error"}` and the connection is cut without HTTP's last chunk, which is how
 * `curl --fail-with-body` (and any HTTP client) learns that the answer did not end well.
 */
async function streamAnswer(res: ServerResponse, run: (io: Pick<CommandIo, 'stdout' | 'json' | 'following'>) => Promise<void>): Promise<void> {
  let pending = '';
  let result: unknown;
  const head = () => {
    if (!res.headersSent) {
      res.writeHead(200, { 'Content-Type': 'application/x-ndjson; charset=utf-8', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    }
  };
  const send = (event: unknown) => {
    head();
    if (!res.destroyed) res.write(`${JSON.stringify(event)}\n`);
  };
  // A follower with nothing to show yet still has its answer: the head goes out now.
  const following = () => {
    head();
    res.flushHeaders();
  };
  const stdout = (text: string) => {
    pending += text;
    let nl: number;
    while ((nl = pending.indexOf('\n')) !== -1) {
      send({ line: pending.slice(0, nl) });
      pending = pending.slice(nl + 1);
    }
  };
  try {
    await run({ stdout, json: (v) => (result = v), following });
  } catch (err) {
    if (!res.headersSent) throw err;
    if (pending !== '') send({ line: pending });
    const error = RackError.from(err);
    send({ error: { code: error.code, message: error.message } });
    // The error line goes out, then the connection closes without the response's last chunk.
    const socket = res.socket;
    socket?.end();
    setTimeout(() => socket?.destroy(), 10_000).unref();
    return;
  }
  if (pending !== '') send({ line: pending });
  send({ result: result ?? {} });
  res.end();
}

/** What answers without a token: the index and the OpenAPI document. */
export function publicPaths(services: Services): Record<string, PublicHandler> {
  const document = openApiDocument(services.version);
  return {
    '/': async (_req, res) => answerJson(res, 200, { name: 'rack', version: services.version, api: `${PREFIX}/`, openapi: `${PREFIX}/openapi.json` }),
    [`${PREFIX}/openapi.json`]: async (_req, res) => answerJson(res, 200, document),
  };
}
