/**
 * The JSON Schemas of the API: request bodies are checked against them at run time (ajv) and the
 * OpenAPI document is made of them, so the document and the checks cannot drift apart. Answers
 * name the fields clients rely on and allow more (a field added later breaks nobody).
 */
export type JsonSchema = Record<string, unknown>;

/** A request body: named fields only; anything else is refused. */
export function object(properties: Record<string, JsonSchema>, required: string[] = []): JsonSchema {
  return { type: 'object', properties, required, additionalProperties: false };
}

/** An answer: these fields at least. */
function shape(properties: Record<string, JsonSchema>, required: string[]): JsonSchema {
  return { type: 'object', properties, required };
}

export const list = (items: JsonSchema): JsonSchema => ({ type: 'array', items });

export const text: JsonSchema = { type: 'string' };
export const bool: JsonSchema = { type: 'boolean' };
export const int: JsonSchema = { type: 'integer' };
const nullableText: JsonSchema = { type: ['string', 'null'] };
const time: JsonSchema = { type: 'string', format: 'date-time' };
const nullableTime: JsonSchema = { type: ['string', 'null'], format: 'date-time' };

export const appName: JsonSchema = { type: 'string', pattern: '^[a-z][a-z0-9]*(-[a-z0-9]+)*$', maxLength: 30 };
export const configKey: JsonSchema = { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', maxLength: 200 };
export const stringMap: JsonSchema = { type: 'object', propertyNames: configKey, additionalProperties: { type: 'string' } };
export const processType: JsonSchema = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,30}$' };
export const host: JsonSchema = { type: 'string', minLength: 3, maxLength: 253 };
export const version: JsonSchema = { type: 'integer', minimum: 1 };
export const credentialName: JsonSchema = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$' };
const role: JsonSchema = { type: 'string', enum: ['admin', 'app', 'deploy'] };

export const app = shape({ name: text, currentRelease: { type: ['integer', 'null'], minimum: 1 }, url: text, createdAt: time, routerTimeout: text }, ['name', 'url', 'currentRelease']);

export const build = shape(
  {
    app: text,
    id: int,
    commit: text,
    status: { type: 'string', enum: ['pending', 'building', 'succeeded', 'failed'] },
    processTypes: { type: 'object', additionalProperties: text },
    image: nullableText,
    createdAt: time,
    finishedAt: nullableTime,
    error: nullableText,
    createdBy: text,
    source: shape({ type: { type: 'string', enum: ['tarball'] }, version: text, description: text }, ['type']),
  },
  ['app', 'id', 'commit', 'status', 'createdAt', 'createdBy'],
);

/** Where a promoted release's image came from (`pipelines:promote`). */
export const promotedFrom = shape({ app: text, release: int, build: int, buildApp: text, imageId: text }, ['app', 'release', 'build', 'buildApp', 'imageId']);

const releaseStatus: JsonSchema = { type: 'string', enum: ['pending', 'succeeded', 'failed', 'recorded'] };

export const release = shape(
  {
    app: text,
    version: int,
    build: int,
    status: releaseStatus,
    current: bool,
    description: text,
    promotedFrom,
    createdBy: text,
    createdAt: time,
    config: stringMap,
    error: nullableText,
  },
  ['app', 'version', 'build', 'status', 'current', 'description', 'createdBy', 'createdAt', 'config'],
);

export const releaseInfo = shape(
  {
    version: int,
    status: releaseStatus,
    current: bool,
    build: int,
    description: text,
    promotedFrom,
    configKeys: list(text),
    configChanges: shape({ added: list(text), changed: list(text), removed: list(text) }, ['added', 'changed', 'removed']),
  },
  ['version', 'status', 'current', 'build', 'description', 'configKeys', 'configChanges'],
);

export const pipelineStage: JsonSchema = { type: 'string', enum: ['development', 'staging', 'production'] };

export const pipeline = shape(
  {
    name: text,
    apps: list(shape({ app: text, stage: pipelineStage, release: { type: ['integer', 'null'] }, description: nullableText, image: nullableText, commit: nullableText, createdAt: nullableText }, ['app', 'stage', 'release'])),
  },
  ['name', 'apps'],
);

export const releaseResult = shape(
  { release: int, status: releaseStatus, description: text, previous: { type: ['integer', 'null'] } },
  ['release', 'status', 'description', 'previous'],
);

export const process = shape(
  {
    name: text,
    type: text,
    release: { type: ['integer', 'null'] },
    state: text,
    restarts: int,
    limits: text,
    startedAt: nullableTime,
    /** Seconds since it started; null while it is not running. */
    uptime: { type: ['integer', 'null'], minimum: 0 },
  },
  ['name', 'type', 'release', 'state', 'restarts', 'startedAt', 'uptime'],
);

export const certificateInfo = shape(
  { names: list(text), issuer: text, notBefore: time, notAfter: time, fingerprint: text },
  ['names', 'issuer', 'notBefore', 'notAfter', 'fingerprint'],
);
export const certificate = shape(
  {
    host: text,
    app: text,
    source: { type: 'string', enum: ['manual', 'acme', 'none'] },
    auto: bool,
    certificate: { oneOf: [certificateInfo, { type: 'null' }] },
    status: text,
    acme: {
      oneOf: [
        shape({ failures: { type: 'integer' }, lastError: text, lastAttemptAt: time, nextAttemptAt: time }, ['failures']),
        { type: 'null' },
      ],
    },
  },
  ['host', 'app', 'source', 'auto', 'certificate', 'status', 'acme'],
);
export const domains = shape({ default: text, domains: list(text) }, ['default', 'domains']);

export const key = shape({ name: text, role, apps: list(text), fingerprint: text, createdAt: time }, ['name', 'role', 'apps', 'fingerprint']);

export const token = shape(
  { name: text, role, apps: list(text), createdAt: time, createdBy: text, expiresAt: nullableTime, lastUsedAt: nullableTime },
  ['name', 'role', 'apps', 'createdAt', 'expiresAt', 'lastUsedAt'],
);

const cronRun = shape(
  { startedAt: time, finishedAt: time, exitCode: int, trigger: text, error: text },
  ['startedAt', 'trigger'],
);
export const cronJob = shape(
  {
    id: text,
    schedule: text,
    command: text,
    concurrency: { type: 'string', enum: ['allow', 'forbid', 'replace'] },
    suspended: bool,
    nextRun: time,
    runningSince: time,
    lastRun: cronRun,
  },
  ['id', 'schedule', 'command', 'concurrency', 'suspended'],
);
export { cronRun };
export const cronSuspension = shape({ id: text, suspended: bool }, ['id', 'suspended']);

export const auditEntry = shape(
  {
    id: int,
    time,
    actor: shape({ kind: { type: 'string', enum: ['key', 'token', 'webhook', 'rack'] }, name: text }, ['kind', 'name']),
    via: { type: 'string', enum: ['ssh', 'http', 'rack'] },
    address: text,
    app: nullableText,
    action: text,
    detail: text,
    outcome: text,
  },
  ['id', 'time', 'actor', 'via', 'address', 'app', 'action', 'detail', 'outcome'],
);

export const addonName: JsonSchema = { type: 'string', pattern: '^[a-z][a-z0-9]*(-[a-z0-9]+)*$', maxLength: 30 };
const attachment = shape({ app: text, alias: text }, ['app', 'alias']);
export const addon = shape({ name: text, type: text, version: text, attached: list(attachment) }, ['name', 'type', 'version', 'attached']);
export const addonInfo = shape(
  {
    name: text, type: text, version: text, plan: text, status: text, size: { type: ['integer', 'null'] }, volume: text, node: text,
    attached: list(attachment), createdFor: text, createdAt: time, backups: int, nextScheduledBackup: time,
  },
  ['name', 'type', 'version', 'status', 'attached'],
);
export const backup = shape({ addon: text, id: text, kind: text, bytes: int, trigger: text, createdAt: time, createdBy: text }, ['addon', 'id', 'bytes', 'createdAt']);

export const node = shape(
  { id: text, name: text, address: text, state: text, availability: text, role: text, processes: int, memoryBytes: int, self: bool },
  ['id', 'name', 'state', 'availability', 'role', 'processes'],
);

const rackBuild = shape({ version: text, commit: text }, ['version', 'commit']);
export const rackInfo = shape(
  {
    version: text, commit: text, pid: int, schema: int, schemaLatest: int, runtime: { type: 'string', enum: ['docker', 'swarm'] }, startedAt: time, uptimeSeconds: int,
    router: {
      oneOf: [
        shape({ pid: int, protocol: int, version: nullableText, startedAt: time, uptimeSeconds: int }, ['pid', 'protocol', 'version', 'startedAt', 'uptimeSeconds']),
        { type: 'null' },
      ],
    },
    routerError: text,
  },
  ['version', 'commit', 'schema', 'runtime', 'startedAt', 'uptimeSeconds', 'router'],
);
export const rackRelease = shape(
  {
    id: int, version: text, commit: text, from: { oneOf: [rackBuild, { type: 'null' }] }, kind: { type: 'string', enum: ['install', 'update', 'rollback', 'start'] },
    description: text, createdBy: text, createdAt: time, status: { type: 'string', enum: ['pending', 'succeeded', 'failed'] },
    finishedAt: nullableTime, durationMs: { type: ['integer', 'null'] }, failedStep: nullableText, error: nullableText, schema: int,
    phases: list(shape({ name: text, ms: int }, ['name', 'ms'])), dir: text,
  },
  ['id', 'version', 'commit', 'from', 'kind', 'createdBy', 'createdAt', 'status', 'finishedAt', 'durationMs', 'failedStep', 'error', 'schema'],
);

const repoDelivery = shape({ id: text, host: text, event: text, at: time, commit: text, result: text }, ['id', 'host', 'event', 'at', 'result']);
/** A connected repository: never its secret or token (`secret` is the word `set`, but once, in repo:connect's answer). */
export const repoLink = shape(
  {
    app: text, url: text, transport: { type: 'string', enum: ['http', 'ssh'] }, branch: text, webhookUrl: text, secret: text, token: bool, statusApi: { type: ['string', 'null'] },
    deployKey: { type: ['string', 'null'] }, createdAt: time, createdBy: text, lastDelivery: { oneOf: [repoDelivery, { type: 'null' }] },
  },
  ['app', 'url', 'transport', 'branch', 'webhookUrl', 'secret', 'token'],
);

export const drain = shape({ id: text, url: text, token: text, sent: int, dropped: int, lastError: text, lastErrorAt: time, createdAt: time }, ['id', 'url', 'token', 'sent', 'dropped']);

export const webhook = shape({ id: text, url: text, events: list(text), createdAt: time }, ['id', 'url', 'events']);

export const delivery = shape(
  { id: text, webhook: text, event: text, action: text, status: { type: 'string', enum: ['pending', 'retrying', 'succeeded', 'failed'] }, attempts: int, lastCode: int, lastAnswer: text, updatedAt: time },
  ['id', 'webhook', 'event', 'status', 'attempts'],
);

const nullableNumber: JsonSchema = { type: ['number', 'null'] };
const metricRow = shape(
  {
    at: time, span: int, requests: int, rps: { type: 'number' },
    status: shape({ '1xx': int, '2xx': int, '3xx': int, '4xx': int, '5xx': int }, ['1xx', '2xx', '3xx', '4xx', '5xx']),
    bytesIn: int, bytesOut: int, p50: nullableNumber, p95: nullableNumber, p99: nullableNumber,
    cpu: nullableNumber, memory: { type: ['integer', 'null'] }, memoryMax: { type: ['integer', 'null'] }, restarts: int, processes: int,
  },
  ['at', 'span', 'requests', 'status', 'p50', 'p95', 'p99', 'cpu', 'memory'],
);
/** `metrics --json`: latencies in ms (the upper bound of a log-spaced bucket), CPU in % of one core, memory in bytes. */
export const metrics = shape(
  { app: text, since: text, resolution: { type: 'string', enum: ['10s', '1m', '10m'] }, type: text, total: metricRow, points: list(metricRow) },
  ['app', 'since', 'resolution', 'total', 'points'],
);

export const rackUpdateCheck = shape(
  { running: rackBuild, available: rackBuild, source: text, as: text, upToDate: bool, ahead: { type: ['integer', 'null'] } },
  ['running', 'available', 'source', 'as', 'upToDate', 'ahead'],
);

export const error = shape({ error: shape({ code: text, message: text }, ['code', 'message']) }, ['error']);

/** One line of an NDJSON answer: a user line, the end's result, or the end's error. */
export const streamEvent: JsonSchema = {
  oneOf: [
    shape({ line: text }, ['line']),
    shape({ result: {} }, ['result']),
    shape({ error: shape({ code: text, message: text }, ['code', 'message']) }, ['error']),
  ],
};

export const maintenance = shape(
  { app: text, maintenance: bool, since: nullableTime, pageUrl: nullableText },
  ['app', 'maintenance', 'since', 'pageUrl'],
);
