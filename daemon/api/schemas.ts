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

export const app = shape({ name: text, currentRelease: { type: ['integer', 'string', 'null'] }, url: text, createdAt: time, routerTimeout: text }, ['name', 'url']);

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
  },
  ['app', 'id', 'commit', 'status', 'createdAt', 'createdBy'],
);

const releaseStatus: JsonSchema = { type: 'string', enum: ['pending', 'succeeded', 'failed', 'recorded'] };

export const release = shape(
  {
    app: text,
    version: int,
    build: int,
    status: releaseStatus,
    current: bool,
    description: text,
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
    configKeys: list(text),
    configChanges: shape({ added: list(text), changed: list(text), removed: list(text) }, ['added', 'changed', 'removed']),
  },
  ['version', 'status', 'current', 'build', 'description', 'configKeys', 'configChanges'],
);

export const releaseResult = shape(
  { release: int, status: releaseStatus, description: text, previous: { type: ['integer', 'null'] } },
  ['release', 'status', 'description', 'previous'],
);

export const process = shape(
  { name: text, type: text, release: { type: ['integer', 'null'] }, state: text, restarts: int, limits: text, startedAt: nullableText },
  ['name', 'type', 'state'],
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

export const auditEntry = shape(
  {
    id: int,
    time,
    actor: shape({ kind: { type: 'string', enum: ['key', 'token'] }, name: text }, ['kind', 'name']),
    via: { type: 'string', enum: ['ssh', 'http'] },
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
    version: text, commit: text, schema: int, schemaLatest: int, runtime: { type: 'string', enum: ['docker', 'swarm'] }, startedAt: time, uptimeSeconds: int,
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
