import type { Flags } from '../commands/command.js';
import { RackError } from '../rack-error.js';
import type { JsonSchema } from './schemas.js';
import * as S from './schemas.js';

/**
 * How the answer goes out:
 * - `json`: the command's `--json` answer or its result, whole;
 * - `text`: its text (a build log), as text/plain;
 * - `stream`: NDJSON, one `{"line"}` per user line as it happens, then `{"result"}` (or `{"error"}`
 *   and a cut connection, so that `curl --fail-with-body` fails);
 * - `lines`: its text lines as a JSON array (`logs`);
 * - `follow`: NDJSON lines until the client goes away (`logs -f`).
 */
export type AnswerMode = 'json' | 'text' | 'stream' | 'lines' | 'follow';

export interface RouteInput {
  params: Record<string, string>;
  query: URLSearchParams;
  body: Record<string, unknown>;
}

/** What a request becomes: the words of a command, as if typed after `ssh rack`. */
export interface CommandWords {
  args: string[];
  flags: Flags;
  /** What the command reads from its standard input (keys:add reads the public key). */
  stdin?: string;
}

export interface ApiRoute {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** OpenAPI's path template under /api/v1; `{app}` is always an app name. */
  path: string;
  command: string;
  summary: string;
  body?: JsonSchema;
  query?: Record<string, JsonSchema>;
  /** What a success holds: the JSON answer, the stream's `result`, or (text) nothing. */
  response: JsonSchema;
  mode: AnswerMode;
  status?: 200 | 201;
  /**
   * The content types of a raw body (a source tarball) the command reads as a stream: the route is
   * chosen only for a request of one of these types, and the route of the same method and path
   * without `upload` for any other.
   */
  upload?: string[];
  /** When the request asks to follow: the answer is then a `follow` stream. */
  follows?: (input: RouteInput) => boolean;
  /** When a change route is only asked a question (rack:update's check): answered whole as JSON, of this schema. */
  asks?: { when: (input: RouteInput) => boolean; response: JsonSchema };
  words(input: RouteInput): CommandWords;
}

const none = (): CommandWords => ({ args: [], flags: {} });
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
const flagIf = (on: unknown, name: string): Flags => (on === true ? { [name]: true } : {});

/** Every resource, mirroring the ssh commands one to one. */
export const ROUTES: ApiRoute[] = [
  // apps
  { method: 'GET', path: '/apps', command: 'apps', summary: 'List the apps the token may see', response: S.list(S.app), mode: 'json', words: none },
  {
    method: 'POST', path: '/apps', command: 'apps:create', summary: 'Create an app', status: 201, mode: 'json',
    body: S.object({ name: S.appName }, ['name']), response: S.object({ name: S.text, url: S.text }, ['name', 'url']),
    words: ({ body }) => ({ args: [str(body['name'])!], flags: {} }),
  },
  { method: 'GET', path: '/apps/{app}', command: 'apps:info', summary: 'Show an app', response: S.app, mode: 'json', words: none },
  {
    method: 'DELETE', path: '/apps/{app}', command: 'apps:destroy', summary: 'Destroy an app and everything of it (confirm with its name)', mode: 'stream',
    query: { confirm: S.appName }, response: S.object({ name: S.text, destroyed: S.bool }, ['name', 'destroyed']),
    words: ({ params, query }) => ({ args: [params['app']!], flags: { confirm: query.get('confirm') ?? '' } }),
  },
  {
    method: 'POST', path: '/apps/{app}/rename', command: 'apps:rename', summary: 'Rename an app: its records, repository, images, processes and hosts follow', mode: 'stream',
    body: S.object({ name: S.appName }, ['name']),
    response: S.object({ name: S.text, renamedFrom: S.text, url: S.text, gitRemote: S.text }, ['name', 'renamedFrom', 'url', 'gitRemote']),
    words: ({ params, body }) => ({ args: [params['app']!, str(body['name'])!], flags: {} }),
  },
  // builds
  {
    method: 'POST', path: '/apps/{app}/builds', command: 'builds:upload', mode: 'stream',
    summary: 'Build a .tar.gz of the source sent as the body (Content-Type application/gzip), as a push would; deploy=true releases it',
    upload: ['application/gzip', 'application/x-gzip', 'application/x-tar+gzip'],
    query: { deploy: { type: 'string', enum: ['true', 'false'] }, version: { type: 'string', minLength: 1, maxLength: 200 }, description: { type: 'string', minLength: 1, maxLength: 200 } },
    response: S.object(
      { build: S.int, status: S.text, commit: S.text, version: { type: ['string', 'null'] }, release: { type: ['integer', 'null'] }, deployed: S.bool },
      ['build', 'status', 'commit', 'release', 'deployed'],
    ),
    words: ({ query }) => ({
      args: [],
      flags: { ...(query.get('deploy') === 'true' ? { deploy: true } : {}), ...(query.get('version') !== null ? { version: query.get('version')! } : {}), ...(query.get('description') !== null ? { description: query.get('description')! } : {}) },
    }),
  },
  { method: 'GET', path: '/apps/{app}/builds', command: 'builds', summary: "List an app's builds", response: S.list(S.build), mode: 'json', words: none },
  {
    method: 'POST', path: '/apps/{app}/builds', command: 'builds:create', summary: 'Build the deploy branch head again (and release it with deploy)', mode: 'stream',
    body: S.object({ deploy: S.bool, cache: S.bool }), response: S.object({ build: S.int, status: S.text, deployed: S.bool }, ['build', 'status', 'deployed']),
    words: ({ body }) => ({ args: [], flags: { ...flagIf(body['deploy'], 'deploy'), ...flagIf(body['cache'] === false, 'no-cache') } }),
  },
  {
    method: 'GET', path: '/apps/{app}/builds/{build}', command: 'builds:info', summary: 'Show one build', response: S.build, mode: 'json',
    words: ({ params }) => ({ args: [params['build']!], flags: {} }),
  },
  {
    method: 'GET', path: '/apps/{app}/builds/{build}/logs', command: 'builds:logs', summary: "A build's stored output (text/plain)", response: S.text, mode: 'text',
    words: ({ params }) => ({ args: [params['build']!], flags: {} }),
  },
  {
    method: 'DELETE', path: '/apps/{app}/build-cache', command: 'builds:cache:clear', summary: "Empty the app's build cache", mode: 'json',
    response: S.object({ cleared: S.bool }, ['cleared']), words: none,
  },
  // releases
  { method: 'GET', path: '/apps/{app}/releases', command: 'releases', summary: "List an app's releases, newest first", response: S.list(S.release), mode: 'json', words: none },
  {
    method: 'GET', path: '/apps/{app}/releases/{version}', command: 'releases:info', summary: 'Show a release and its config changes', response: S.releaseInfo, mode: 'json',
    words: ({ params }) => ({ args: [params['version']!], flags: {} }),
  },
  {
    method: 'POST', path: '/apps/{app}/releases/rollback', command: 'releases:rollback', summary: 'Roll back (to a version, or the previous good release) as a new release', mode: 'stream',
    body: S.object({ version: S.version }), response: S.releaseResult,
    words: ({ body }) => ({ args: body['version'] === undefined ? [] : [`v${String(body['version'])}`], flags: {} }),
  },
  {
    method: 'POST', path: '/apps/{app}/releases/{version}/promote', command: 'releases:promote', summary: 'Roll out any release as a new release', mode: 'stream',
    response: S.releaseResult, words: ({ params }) => ({ args: [params['version']!], flags: {} }),
  },
  // pipelines
  { method: 'GET', path: '/pipelines', command: 'pipelines', summary: "The pipelines that hold the token's apps: stages, apps, current releases", response: S.list(S.pipeline), mode: 'json', words: none },
  {
    method: 'POST', path: '/pipelines', command: 'pipelines:create', summary: 'Create a pipeline (admin)', status: 201, mode: 'json',
    body: S.object({ name: S.appName }, ['name']), response: S.object({ name: S.text }, ['name']),
    words: ({ body }) => ({ args: [str(body['name'])!], flags: {} }),
  },
  {
    method: 'GET', path: '/pipelines/{pipeline}', command: 'pipelines:info', summary: "A pipeline's stages, apps and current releases", response: S.pipeline, mode: 'json',
    words: ({ params }) => ({ args: [params['pipeline']!], flags: {} }),
  },
  {
    method: 'DELETE', path: '/pipelines/{pipeline}', command: 'pipelines:destroy', summary: 'Remove a pipeline; its apps stay (admin)', mode: 'json',
    response: S.object({ name: S.text, destroyed: S.bool }, ['name', 'destroyed']), words: ({ params }) => ({ args: [params['pipeline']!], flags: {} }),
  },
  {
    method: 'PUT', path: '/apps/{app}/pipeline', command: 'pipelines:add', summary: 'Put the app at a stage of a pipeline (or move it to another stage)', mode: 'json',
    body: S.object({ pipeline: S.appName, stage: S.pipelineStage }, ['pipeline', 'stage']),
    response: S.object({ app: S.text, pipeline: S.text, stage: S.text }, ['app', 'pipeline', 'stage']),
    words: ({ params, body }) => ({ args: [params['app']!], flags: { pipeline: str(body['pipeline'])!, stage: str(body['stage'])! } }),
  },
  {
    method: 'DELETE', path: '/apps/{app}/pipeline', command: 'pipelines:remove', summary: 'Take the app out of its pipeline', mode: 'json',
    response: S.object({ app: S.text, pipeline: S.text, removed: S.bool }, ['app', 'pipeline', 'removed']), words: ({ params }) => ({ args: [params['app']!], flags: {} }),
  },
  {
    method: 'POST', path: '/apps/{app}/promotions', command: 'pipelines:promote', mode: 'stream',
    summary: "Release the app's image to the next stage's apps (or to `to`), each with its own config: no build",
    body: S.object({ to: S.list(S.appName) }),
    response: S.object(
      {
        source: S.object({ app: S.text, release: S.int }, ['app', 'release']),
        promotions: S.list(S.object({ app: S.text, release: { type: ['integer', 'null'] }, status: S.text, error: S.text }, ['app', 'release', 'status'])),
      },
      ['source', 'promotions'],
    ),
    words: ({ body }) => ({ args: [], flags: strings(body['to']).length ? { to: strings(body['to']) } : {} }),
  },
  {
    method: 'GET', path: '/apps/{app}/pipeline/diff', command: 'pipelines:diff', summary: "The commits between the app's release and the next stage's apps'", mode: 'json',
    response: S.object({ app: S.text, release: S.int, commit: S.text, targets: S.list({ type: 'object' }) }, ['app', 'release', 'commit', 'targets']),
    words: none,
  },
  // config
  { method: 'GET', path: '/apps/{app}/config', command: 'config', summary: "An app's config vars", response: S.stringMap, mode: 'json', words: none },
  {
    method: 'PATCH', path: '/apps/{app}/config', command: 'config:set', summary: 'Set and unset config vars: one release, rolled out (unless deploy is false)', mode: 'stream',
    body: S.object({ set: S.stringMap, unset: S.list(S.configKey), deploy: S.bool }),
    response: S.object({ release: { type: ['integer', 'null'] }, status: S.text, description: S.text }, ['release', 'status', 'description']),
    words: ({ body }) => {
      const set = (body['set'] ?? {}) as Record<string, string>;
      return { args: Object.entries(set).map(([k, v]) => `${k}=${v}`), flags: { unset: strings(body['unset']), ...flagIf(body['deploy'] === false, 'no-deploy') } };
    },
  },
  // processes and formation
  { method: 'GET', path: '/apps/{app}/processes', command: 'ps', summary: "An app's processes", response: S.list(S.process), mode: 'json', words: none },
  {
    method: 'PATCH', path: '/apps/{app}/formation', command: 'ps:scale', summary: 'Set how many processes of each type run', mode: 'stream',
    body: { type: 'object', minProperties: 1, maxProperties: 10, additionalProperties: { type: 'integer', minimum: 0, maximum: 20 } },
    response: S.object({ formation: { type: 'object', additionalProperties: S.int } }, ['formation']),
    words: ({ body }) => ({ args: Object.entries(body).map(([t, n]) => `${t}=${String(n)}`), flags: {} }),
  },
  {
    method: 'POST', path: '/apps/{app}/formation/restart', command: 'ps:restart', summary: 'Replace the processes (of one type, or one process: web.1) with fresh ones of the same names', mode: 'stream',
    body: S.object({ type: S.processType, process: S.dynoName }), response: S.object({ restarted: { type: ['string', 'null'] } }, ['restarted']),
    words: ({ body }) => ({ args: [str(body['process']) ?? str(body['type'])].filter((w): w is string => w !== undefined), flags: {} }),
  },
  {
    method: 'POST', path: '/apps/{app}/formation/stop', command: 'ps:stop', summary: 'Stop the processes of a type, or one process (web.1), until the next scale or release', mode: 'stream',
    body: { ...S.object({ type: S.processType, process: S.dynoName }), minProperties: 1, maxProperties: 1 },
    response: S.object({ stopped: S.list(S.text) }, ['stopped']),
    words: ({ body }) => ({ args: [str(body['process']) ?? str(body['type']) ?? ''], flags: {} }),
  },
  {
    method: 'PATCH', path: '/apps/{app}/limits', command: 'ps:limit', summary: 'Set the memory, CPU, process and disk limits of a process type', mode: 'stream',
    body: S.object({ type: S.processType, memory: S.text, cpu: S.text, pids: S.text, disk: S.text }, ['type']),
    response: S.object({ type: S.text, limits: { type: 'object' } }, ['type', 'limits']),
    words: ({ body }) => ({
      args: [str(body['type'])!, ...(['memory', 'cpu', 'pids', 'disk'] as const).filter((k) => body[k] !== undefined).map((k) => `${k}=${str(body[k])!}`)],
      flags: {},
    }),
  },
  // domains
  { method: 'GET', path: '/apps/{app}/domains', command: 'domains', summary: 'The host names an app answers on', response: S.domains, mode: 'json', words: none },
  {
    method: 'POST', path: '/apps/{app}/domains', command: 'domains:add', summary: 'Serve the app on a host name too', status: 201, mode: 'json',
    body: S.object({ host: S.host }, ['host']), response: S.object({ host: S.text }, ['host']),
    words: ({ body }) => ({ args: [str(body['host'])!], flags: {} }),
  },
  {
    method: 'DELETE', path: '/apps/{app}/domains/{host}', command: 'domains:remove', summary: 'Stop serving the app on a host name', mode: 'json',
    response: S.object({ host: S.text }, ['host']), words: ({ params }) => ({ args: [params['host']!], flags: {} }),
  },
  // scheduled jobs (app.json cron)
  { method: 'GET', path: '/apps/{app}/cron', command: 'cron:list', summary: "The app's scheduled jobs: schedule, next and last run, suspended", response: S.list(S.cronJob), mode: 'json', words: none },
  {
    method: 'POST', path: '/apps/{app}/cron/{id}/runs', command: 'cron:run', summary: "Run a scheduled job now, once: its output streamed, then how it ended (a non-zero exit is an error)", mode: 'stream',
    response: S.cronRun, words: ({ params }) => ({ args: [params['id']!], flags: {} }),
  },
  {
    method: 'POST', path: '/apps/{app}/cron/{id}/suspend', command: 'cron:suspend', summary: 'Stop running a scheduled job at its times (kept across releases and restarts)', mode: 'json',
    response: S.cronSuspension, words: ({ params }) => ({ args: [params['id']!], flags: {} }),
  },
  {
    method: 'POST', path: '/apps/{app}/cron/{id}/resume', command: 'cron:resume', summary: 'Run a suspended scheduled job at its times again', mode: 'json',
    response: S.cronSuspension, words: ({ params }) => ({ args: [params['id']!], flags: {} }),
  },
  // add-ons (export, import and connect stream bytes or a terminal: ssh only)
  { method: 'GET', path: '/addons', command: 'addons', summary: "The add-ons of the token's apps", response: S.list(S.addon), mode: 'json', words: none },
  {
    method: 'POST', path: '/apps/{app}/addons', command: 'addons:create', summary: 'Make a Postgres or Redis for the app and attach it (a release)', status: 201, mode: 'stream',
    body: S.object({ type: { type: 'string', enum: ['postgres', 'redis'] }, name: S.addonName, alias: S.configKey }, ['type']),
    response: S.object({ name: S.text, type: S.text, version: S.text }, ['name', 'type']),
    words: ({ body }) => ({
      args: [str(body['type'])!],
      flags: { ...(str(body['name']) ? { as: str(body['name'])! } : {}), ...(str(body['alias']) ? { alias: str(body['alias'])! } : {}) },
    }),
  },
  { method: 'GET', path: '/addons/{addon}', command: 'addons:info', summary: "An add-on's version, status, size, attachments and backups", response: S.addonInfo, mode: 'json', words: ({ params }) => ({ args: [params['addon']!], flags: {} }) },
  {
    method: 'POST', path: '/apps/{app}/attachments', command: 'addons:attach', summary: 'Attach an add-on to the app under an alias (a release)', status: 201, mode: 'stream',
    body: S.object({ addon: S.addonName, alias: S.configKey }, ['addon']),
    response: S.object({ name: S.text, app: S.text, attached: S.bool }, ['name', 'app', 'attached']),
    words: ({ body }) => ({ args: [str(body['addon'])!], flags: str(body['alias']) ? { as: str(body['alias'])! } : {} }),
  },
  {
    method: 'DELETE', path: '/apps/{app}/attachments/{addon}', command: 'addons:detach', summary: "Detach an add-on from the app (a release); its data stays", mode: 'stream',
    response: S.object({ name: S.text, app: S.text, attached: S.bool }, ['name', 'app', 'attached']),
    words: ({ params }) => ({ args: [params['addon']!], flags: {} }),
  },
  {
    method: 'DELETE', path: '/addons/{addon}', command: 'addons:destroy', summary: 'Remove a detached add-on and its data after a final backup (?confirm=NAME)', mode: 'stream',
    query: { confirm: S.text }, response: S.object({ name: S.text, destroyed: S.bool }, ['name', 'destroyed']),
    words: ({ params, query }) => ({ args: [params['addon']!], flags: query.get('confirm') !== null ? { confirm: query.get('confirm')! } : {} }),
  },
  { method: 'GET', path: '/addons/{addon}/backups', command: 'addons:backups', summary: "An add-on's backups, newest first", response: S.list(S.backup), mode: 'json', words: ({ params }) => ({ args: [params['addon']!], flags: {} }) },
  {
    method: 'POST', path: '/addons/{addon}/backups', command: 'addons:backup', summary: 'Take a backup of the add-on now', status: 201, mode: 'json',
    response: S.backup, words: ({ params }) => ({ args: [params['addon']!], flags: {} }),
  },
  {
    method: 'POST', path: '/addons/{addon}/restore', command: 'addons:restore', summary: "Replace the add-on's data with a backup (b3 or OTHER:b3); a backup is taken first", mode: 'stream',
    body: S.object({ backup: { type: 'string', maxLength: 60 } }, ['backup']),
    response: S.object({ name: S.text, restored: S.text, safety: S.text }, ['name', 'restored', 'safety']),
    words: ({ params, body }) => ({ args: [params['addon']!, str(body['backup'])!], flags: {} }),
  },
  // certificates
  {
    method: 'GET', path: '/apps/{app}/certs', command: 'certs', summary: "The certificates of an app's hosts: source, expiry, renewal, errors", mode: 'json',
    response: S.list(S.certificate), words: none,
  },
  {
    method: 'POST', path: '/certs', command: 'certs:add', summary: 'Serve a host over HTTPS with this certificate (PEM: the chain, leaf first, then its key)', status: 201, mode: 'json',
    body: S.object({ host: S.host, pem: { type: 'string', minLength: 1, maxLength: 65536 } }, ['host', 'pem']),
    response: S.object({ host: S.text, app: S.text, certificate: S.certificateInfo }, ['host', 'app', 'certificate']),
    words: ({ body }) => ({ args: [str(body['host'])!], flags: {}, stdin: str(body['pem'])! }),
  },
  {
    method: 'DELETE', path: '/certs/{host}', command: 'certs:remove', summary: "Stop serving a host's certificate", mode: 'json',
    response: S.object({ host: S.text, app: S.text }, ['host', 'app']), words: ({ params }) => ({ args: [params['host']!], flags: {} }),
  },
  ...(['auto', 'redirect', 'hsts'] as const).map(
    (name): ApiRoute => ({
      method: 'PATCH', path: `/apps/{app}/https/${name}`, command: `certs:${name}`, mode: 'json',
      summary: {
        auto: 'Automatic certificates (ACME) on or off; orders run in the background (see the certs)',
        redirect: 'Redirect plain HTTP to HTTPS (308) on hosts that have a certificate',
        hsts: 'Send Strict-Transport-Security on HTTPS answers',
      }[name],
      body: S.object({ on: S.bool }, ['on']), response: S.object({ app: S.text, [name]: S.bool }, ['app', name]),
      words: ({ body }) => ({ args: [body['on'] === true ? 'on' : 'off'], flags: name === 'auto' ? { 'no-wait': true } : {} }),
    }),
  ),
  {
    method: 'PATCH', path: '/apps/{app}/router/timeout', command: 'router:timeout', mode: 'json',
    summary: 'How long the app has to start an answer before the client gets a 504: whole seconds 1-3600, or null for the default (30 s)',
    body: S.object({ seconds: { type: ['integer', 'null'], minimum: 1, maximum: 3600 } }, ['seconds']),
    response: S.object({ app: S.text, timeoutSeconds: S.int, default: S.bool }, ['app', 'timeoutSeconds', 'default']),
    words: ({ body }) => ({ args: [typeof body['seconds'] === 'number' ? String(body['seconds']) : 'default'], flags: {} }),
  },
  { method: 'GET', path: '/apps/{app}/maintenance', command: 'maintenance', summary: 'Whether the app is in maintenance mode', response: S.maintenance, mode: 'json', words: none },
  {
    method: 'PUT', path: '/apps/{app}/maintenance', command: 'maintenance:on', mode: 'json',
    summary: "Answer every request with a 503, Retry-After and a page (rack's, or the one at pageUrl, fetched now); processes keep running",
    body: S.object({ pageUrl: { type: 'string', minLength: 1, maxLength: 2048 } }), response: S.maintenance,
    words: ({ body }) => ({ args: [], flags: str(body['pageUrl']) === undefined ? {} : { page: str(body['pageUrl'])! } }),
  },
  {
    method: 'DELETE', path: '/apps/{app}/maintenance', command: 'maintenance:off', summary: 'Serve requests again', mode: 'json',
    response: S.maintenance, words: none,
  },
  {
    method: 'PATCH', path: '/apps/{app}/logs/router', command: 'logs:router', mode: 'json',
    summary: "Keep the router's per-request lines for the app when nobody follows its logs (they cost the router and rackd CPU)",
    body: S.object({ keep: S.bool }, ['keep']),
    response: S.object({ app: S.text, keep: S.bool }, ['app', 'keep']),
    words: ({ body }) => ({ args: [body['keep'] === true ? 'on' : 'off'], flags: {} }),
  },
  // connected repository
  { method: 'GET', path: '/apps/{app}/repo', command: 'repo:info', summary: 'The connected repository, its webhook URL and the last delivery', response: S.repoLink, mode: 'json', words: none },
  {
    method: 'PUT', path: '/apps/{app}/repo', command: 'repo:connect', summary: "Deploy from a repository's pushes: the answer holds the webhook URL and its secret (shown once)", mode: 'json',
    body: S.object({ url: { type: 'string', minLength: 1, maxLength: 500 }, branch: { type: 'string', minLength: 1, maxLength: 100 }, token: { type: 'string', minLength: 1, maxLength: 512 }, statusApi: { type: 'string', minLength: 1, maxLength: 500 } }, ['url']),
    response: S.repoLink,
    words: ({ body }) => ({
      args: [str(body['url'])!],
      flags: { ...(body['branch'] === undefined ? {} : { branch: str(body['branch'])! }), ...(body['token'] === undefined ? {} : { 'token-stdin': true }), ...(body['statusApi'] === undefined ? {} : { 'status-api': str(body['statusApi'])! }) },
      ...(body['token'] === undefined ? {} : { stdin: str(body['token'])! }),
    }),
  },
  {
    method: 'DELETE', path: '/apps/{app}/repo', command: 'repo:disconnect', summary: 'Stop deploying from the connected repository', mode: 'json',
    response: S.object({ app: S.text, connected: S.bool }, ['app', 'connected']), words: none,
  },
  {
    method: 'GET', path: '/apps/{app}/review-apps', command: 'reviewapps', summary: "The app's review apps (APP-pr-N)", mode: 'json',
    response: S.list(S.object({ name: S.text, pullRequest: S.int, release: { type: ['string', 'null'] }, url: S.text }, ['name', 'pullRequest', 'url'])), words: none,
  },
  {
    method: 'PUT', path: '/apps/{app}/review-apps', command: 'reviewapps:enable', summary: 'Make APP-pr-N for each pull request opened or updated', mode: 'json',
    response: S.object({ app: S.text, reviewApps: S.bool }, ['app', 'reviewApps']), words: none,
  },
  {
    method: 'DELETE', path: '/apps/{app}/review-apps', command: 'reviewapps:disable', summary: 'Stop making review apps', mode: 'json',
    response: S.object({ app: S.text, reviewApps: S.bool }, ['app', 'reviewApps']), words: none,
  },
  // logs
  {
    method: 'GET', path: '/apps/{app}/logs', command: 'logs', summary: "Kept process and router lines (since/until: 2h or an ISO time; grep: a plain substring); follow=true streams new ones (NDJSON) until you hang up", mode: 'lines',
    follows: ({ query }) => query.get('follow') === 'true',
    query: {
      lines: { type: 'string', pattern: '^[0-9]{1,5}$' },
      type: S.processType,
      follow: { type: 'string', enum: ['true', 'false'] },
      since: { type: 'string', maxLength: 40 },
      until: { type: 'string', maxLength: 40 },
      grep: { type: 'string', minLength: 1, maxLength: 200 },
    },
    response: S.list(S.text),
    words: ({ query }) => ({
      args: [],
      flags: {
        ...(query.get('lines') !== null ? { num: query.get('lines')! } : {}),
        ...(query.get('type') !== null ? { ps: query.get('type')! } : {}),
        ...Object.fromEntries(['since', 'until', 'grep'].flatMap((k) => (query.get(k) !== null ? [[k, query.get(k)!]] : []))),
        ...(query.get('follow') === 'true' ? { tail: true } : {}),
      },
    }),
  },
  // drains and webhooks
  { method: 'GET', path: '/apps/{app}/drains', command: 'drains', summary: "An app's log drains, with lines sent and dropped and the last error", response: S.list(S.drain), mode: 'json', words: none },
  {
    method: 'POST', path: '/apps/{app}/drains', command: 'drains:add', summary: "Send the app's log lines to an https://, syslog+tls:// or syslog:// URL", status: 201, mode: 'json',
    body: S.object({ url: { type: 'string', minLength: 1, maxLength: 2048 } }, ['url']), response: S.object({ id: S.text, url: S.text, token: S.text }, ['id', 'url', 'token']),
    words: ({ body }) => ({ args: [str(body['url'])!], flags: {} }),
  },
  {
    method: 'DELETE', path: '/apps/{app}/drains/{drain}', command: 'drains:remove', summary: 'Remove a drain (by ID, token or URL)', mode: 'json',
    response: S.object({ id: S.text, url: S.text, removed: S.bool }, ['id', 'removed']), words: ({ params }) => ({ args: [params['drain']!], flags: {} }),
  },
  { method: 'GET', path: '/apps/{app}/webhooks', command: 'webhooks', summary: "An app's webhooks and their events", response: S.list(S.webhook), mode: 'json', words: none },
  {
    method: 'POST', path: '/apps/{app}/webhooks', command: 'webhooks:add', summary: "POST the app's events to a URL, signed (Rack-Webhook-Hmac-SHA256); the answer holds the secret once unless you gave one", status: 201, mode: 'json',
    body: S.object({ url: { type: 'string', minLength: 1, maxLength: 2048 }, events: S.list({ type: 'string', enum: ['build', 'release', 'rollback', 'crash', 'addon', 'scale'] }), secret: { type: 'string', minLength: 16, maxLength: 4096 } }, ['url']),
    response: S.object({ id: S.text, url: S.text, events: S.list(S.text), secret: S.text }, ['id', 'url', 'events']),
    words: ({ body }) => ({
      args: [str(body['url'])!],
      flags: { ...(strings(body['events']).length > 0 ? { events: strings(body['events']).join(',') } : {}), ...(str(body['secret']) !== undefined ? { 'secret-stdin': true } : {}) },
      ...(str(body['secret']) !== undefined ? { stdin: str(body['secret'])! } : {}),
    }),
  },
  {
    method: 'DELETE', path: '/apps/{app}/webhooks/{webhook}', command: 'webhooks:remove', summary: 'Remove a webhook', mode: 'json',
    response: S.object({ id: S.text, removed: S.bool }, ['id', 'removed']), words: ({ params }) => ({ args: [params['webhook']!], flags: {} }),
  },
  {
    method: 'GET', path: '/apps/{app}/webhooks/deliveries', command: 'webhooks:deliveries', summary: "The app's latest webhook deliveries: status, attempts, the receiver's answer", mode: 'json',
    query: { limit: { type: 'string', pattern: '^[1-9][0-9]{0,2}$' } }, response: S.list(S.delivery),
    words: ({ query }) => ({ args: [], flags: query.get('limit') !== null ? { num: query.get('limit')! } : {} }),
  },
  // metrics
  {
    method: 'GET', path: '/apps/{app}/metrics', command: 'metrics', mode: 'json',
    summary: "Requests (rate, status classes, p50/p95/p99) and processes' CPU and memory over time: 10 s points within the hour, 1 min within the day, 10 min within the week",
    query: { since: { type: 'string', pattern: '^[1-9][0-9]{0,5}[smhd]$' }, type: S.processType },
    response: S.metrics,
    words: ({ query }) => ({
      args: [],
      flags: {
        ...(query.get('since') !== null ? { since: query.get('since')! } : {}),
        ...(query.get('type') !== null ? { type: query.get('type')! } : {}),
      },
    }),
  },
  // access
  { method: 'GET', path: '/keys', command: 'keys', summary: 'List the SSH keys and their rights', response: S.list(S.key), mode: 'json', words: none },
  {
    method: 'POST', path: '/keys', command: 'keys:add', summary: 'Add an SSH key: admin, or limited to apps, or deploy-only', status: 201, mode: 'json',
    body: S.object({ name: S.credentialName, publicKey: { type: 'string', minLength: 1, maxLength: 16384 }, apps: S.list(S.appName), deployOnly: S.bool }, ['name', 'publicKey']),
    response: S.key,
    words: ({ body }) => ({ args: [str(body['name'])!], flags: { app: strings(body['apps']), ...flagIf(body['deployOnly'], 'deploy-only') }, stdin: str(body['publicKey'])! }),
  },
  {
    method: 'DELETE', path: '/keys/{name}', command: 'keys:remove', summary: 'Remove an SSH key', mode: 'json', response: S.key,
    words: ({ params }) => ({ args: [params['name']!], flags: {} }),
  },
  { method: 'GET', path: '/tokens', command: 'tokens', summary: 'List the API tokens: rights, expiry, last use', response: S.list(S.token), mode: 'json', words: none },
  {
    method: 'POST', path: '/tokens', command: 'tokens:create', summary: 'Make an API token; the answer holds it, once', status: 201, mode: 'json',
    body: S.object({ name: S.credentialName, apps: S.list(S.appName), deployOnly: S.bool, expires: { type: 'string', pattern: '^[1-9][0-9]{0,4}[mhdw]$' } }, ['name']),
    response: { ...S.token, required: [...(S.token.required as string[]), 'token'], properties: { ...(S.token.properties as object), token: S.text } },
    words: ({ body }) => ({
      args: [str(body['name'])!],
      flags: { app: strings(body['apps']), ...flagIf(body['deployOnly'], 'deploy-only'), ...(body['expires'] !== undefined ? { expires: str(body['expires'])! } : {}) },
    }),
  },
  {
    method: 'DELETE', path: '/tokens/{name}', command: 'tokens:revoke', summary: 'Revoke an API token, at once', mode: 'json', response: S.token,
    words: ({ params }) => ({ args: [params['name']!], flags: {} }),
  },
  {
    method: 'GET', path: '/audit', command: 'audit', summary: 'Recent changes: who, from where, what, when (newest first)', mode: 'json',
    query: { app: S.appName, limit: { type: 'string', pattern: '^[0-9]{1,4}$' } }, response: S.list(S.auditEntry),
    words: ({ query }) => ({
      args: [],
      flags: query.get('limit') !== null ? { num: query.get('limit')! } : {},
    }),
  },
  // rack itself
  { method: 'GET', path: '/rack', command: 'rack', summary: 'Which rack runs: version, commit, schema, runtime, uptime, router', response: S.rackInfo, mode: 'json', words: none },
  { method: 'GET', path: '/rack/releases', command: 'rack:releases', summary: "rack's own releases (installs, updates, rollbacks), newest first", response: S.list(S.rackRelease), mode: 'json', words: none },
  {
    method: 'GET', path: '/rack/releases/{release}', command: 'rack:releases:info', summary: "One of rack's releases (r3 or 3): its steps with their times, failed step and error", mode: 'json',
    response: S.rackRelease, words: ({ params }) => ({ args: [params['release']!], flags: {} }),
  },
  {
    method: 'POST', path: '/rack/update', command: 'rack:update', mode: 'stream',
    summary: "Install a ref (default: the source's HEAD) from rack's source or `from`, then switch to it; the stream ends as the switch begins, and GET /rack/releases tells how it went. With check: only whether there is a newer rack (JSON)",
    body: S.object({ ref: { type: 'string', minLength: 1, maxLength: 200 }, from: { type: 'string', minLength: 1, maxLength: 1000 }, check: S.bool }),
    response: { type: 'object' }, asks: { when: ({ body }) => body['check'] === true, response: S.rackUpdateCheck },
    words: ({ body }) => ({ args: body['ref'] === undefined ? [] : [str(body['ref'])!], flags: { ...(str(body['from']) ? { from: str(body['from'])! } : {}), ...flagIf(body['check'], 'check') } }),
  },
  {
    method: 'POST', path: '/rack/rollback', command: 'rack:rollback', mode: 'stream',
    summary: 'Go back to a rack release (r3 or 3; default: the one before the running rack) as an update does; the stream ends as the switch begins',
    body: S.object({ release: { type: ['string', 'integer'], maxLength: 20 } }), response: { type: 'object' },
    words: ({ body }) => ({ args: body['release'] === undefined ? [] : [String(body['release'] as string | number)], flags: {} }),
  },
  // nodes
  { method: 'GET', path: '/nodes', command: 'nodes', summary: 'The machines processes run on', response: S.list(S.node), mode: 'json', words: none },
  {
    method: 'GET', path: '/nodes/join-command', command: 'nodes:join-command', summary: 'The command a new machine runs to join', mode: 'json',
    response: S.object({ command: S.text }, ['command']), words: none,
  },
  {
    method: 'POST', path: '/nodes/{name}/drain', command: 'nodes:drain', summary: 'Place no more processes on a machine; wait until its processes run elsewhere', mode: 'stream',
    response: S.node, words: ({ params }) => ({ args: [params['name']!], flags: {} }),
  },
  {
    method: 'POST', path: '/nodes/{name}/activate', command: 'nodes:activate', summary: 'Place processes on a drained machine again', mode: 'json',
    response: S.node, words: ({ params }) => ({ args: [params['name']!], flags: {} }),
  },
  {
    method: 'DELETE', path: '/nodes/{name}', command: 'nodes:remove', summary: 'Drain a machine, then take it out of this rack', mode: 'stream',
    response: S.node, words: ({ params }) => ({ args: [params['name']!], flags: {} }),
  },
];

export interface RouteMatch {
  route: ApiRoute;
  params: Record<string, string>;
}

const compiled = ROUTES.map((route) => {
  const names: string[] = [];
  const source = route.path.replace(/\{([a-z]+)\}/g, (_m, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  return { route, names, pattern: new RegExp(`^${source}$`) };
});

/**
 * The route for a path under /api/v1, method and (for the routes that take a raw body) the
 * request's content type, lower-cased without parameters; a known path with another method is a 405 that
 * names the methods it has, anything else a 404.
 */
export function matchRoute(method: string, path: string, contentType = ''): RouteMatch {
  const allowed: string[] = [];
  for (const { route, names, pattern } of compiled) {
    const m = pattern.exec(path);
    if (!m) continue;
    if (route.method === method && route.upload && !route.upload.includes(contentType)) continue;
    if (route.method !== method) {
      allowed.push(route.method);
      continue;
    }
    const params: Record<string, string> = {};
    names.forEach((name, i) => {
      let value: string;
      try {
        value = decodeURIComponent(m[i + 1]!);
      } catch {
        throw new RackError('bad_argument', `the path's ${name} is not valid percent-encoding`);
      }
      params[name] = value;
    });
    return { route, params };
  }
  if (allowed.length > 0) {
    throw Object.assign(new RackError('method_not_allowed', `${method.slice(0, 10)} is not allowed on ${path.slice(0, 100)}; use ${allowed.join(', ')}`), { allow: allowed });
  }
  throw new RackError('not_found', `no API resource at ${path.slice(0, 100)}`);
}
