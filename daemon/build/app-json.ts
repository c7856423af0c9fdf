import { checkCronJobs } from '../cron/cron-jobs.js';
import type { CronJob } from '../store/records.js';

/** What an app may ask of its web health check; the supervisor fills in the rest. */
export interface AppHealthCheck {
  path?: string;
  timeoutMs?: number;
  intervalMs?: number;
  attempts?: number;
  initialDelayMs?: number;
  content?: string;
}

/** What rack takes from app.json, and a line for each key it read but does not honour. */
export interface AppJson {
  healthcheck?: AppHealthCheck;
  /** `formation`: type → quantity, the defaults `ps:scale` overrides. */
  formation?: Record<string, number>;
  /** `scripts.dokku.predeploy`: run as the release phase when the Procfile has none. */
  predeploy?: string;
  warnings: string[];
}

/** The most instances app.json may ask of one type; RACK_MAX_PROCESSES still bounds the whole app. */
const MAX_QUANTITY = 100;
const TYPE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,29}$/;

type Doc = Record<string, unknown>;
const isObject = (v: unknown): v is Doc => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * app.json as Dokku and Heroku read it. rack honours `healthchecks.web` (Dokku's checks),
 * `formation` (Heroku's and Dokku's) and `scripts.dokku.predeploy` (as the release phase); it says
 * so when it sees a key it does not run (`scripts.dokku.postdeploy`, Heroku's `scripts.postdeploy`),
 * rather than ignoring it silently. A malformed file is a warning too: the push goes on as without one.
 */
export function readAppJson(text: string): AppJson {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { warnings: [`app.json is not valid JSON (${err instanceof Error ? err.message.slice(0, 120) : 'unreadable'}); it is ignored`] };
  }
  if (!isObject(doc)) return { warnings: ['app.json must hold an object; it is ignored'] };
  const out: AppJson = { warnings: [] };
  const healthcheck = healthCheckOf(doc);
  if (healthcheck) out.healthcheck = healthcheck;
  const formation = formationOf(doc['formation'], out.warnings);
  if (formation) out.formation = formation;
  const scripts = isObject(doc['scripts']) ? doc['scripts'] : {};
  const dokku = isObject(scripts['dokku']) ? scripts['dokku'] : {};
  if (typeof dokku['predeploy'] === 'string' && dokku['predeploy'].trim() !== '') out.predeploy = dokku['predeploy'].trim();
  if (typeof dokku['postdeploy'] === 'string') {
    out.warnings.push('app.json scripts.dokku.postdeploy is not run by rack: use scripts.dokku.predeploy or a `release:` line in the Procfile');
  }
  if (typeof scripts['postdeploy'] === 'string' || isObject(scripts['postdeploy'])) {
    out.warnings.push('app.json scripts.postdeploy (Heroku, once after an app is set up) is not run by rack: run it with `ssh rack run`');
  }
  if (typeof scripts['predeploy'] === 'string') {
    out.warnings.push('app.json scripts.predeploy is not a Heroku or Dokku key: rack reads scripts.dokku.predeploy');
  }
  return out;
}

/** The health check alone, for callers that need nothing else. */
export function healthCheckFromAppJson(text: string): AppHealthCheck | undefined {
  return readAppJson(text).healthcheck;
}

/**
 * Dokku's format:
 * `{"healthchecks": {"web": [{"path": "/health", "timeout": 5, "attempts": 10, "wait": 1, "initialDelay": 0, "content": "ok"}]}}`
 * (seconds). Unknown or malformed fields are ignored in favour of the defaults.
 */
function healthCheckOf(doc: Doc): AppHealthCheck | undefined {
  const checks = isObject(doc['healthchecks']) ? doc['healthchecks']['web'] : undefined;
  const check = Array.isArray(checks) ? (checks[0] as unknown) : undefined;
  if (!isObject(check)) return undefined;
  const seconds = (v: unknown, max: number) => (typeof v === 'number' && v >= 0 && v <= max ? Math.round(v * 1000) : undefined);
  const out: AppHealthCheck = {};
  if (typeof check['path'] === 'string' && /^\/[\x21-\x7e]*$/.test(check['path'])) out.path = check['path'];
  const timeout = seconds(check['timeout'], 60);
  if (timeout) out.timeoutMs = timeout;
  const wait = seconds(check['wait'], 60);
  if (wait !== undefined) out.intervalMs = wait;
  const delay = seconds(check['initialDelay'], 300);
  if (delay !== undefined) out.initialDelayMs = delay;
  if (typeof check['attempts'] === 'number' && Number.isInteger(check['attempts']) && check['attempts'] > 0) out.attempts = Math.min(check['attempts'], 1000);
  if (typeof check['content'] === 'string' && check['content'] !== '' && check['content'].length <= 1024) out.content = check['content'];
  return out;
}

/** `{"web": {"quantity": 1}, "worker": {"quantity": 2}}`; a bad entry is left out with a warning. */
function formationOf(value: unknown, warnings: string[]): Record<string, number> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) {
    warnings.push('app.json formation must map process types to {"quantity": N}; it is ignored');
    return undefined;
  }
  const out: [string, number][] = [];
  for (const [type, entry] of Object.entries(value)) {
    const quantity = isObject(entry) ? entry['quantity'] : undefined;
    if (!TYPE_NAME.test(type) || typeof quantity !== 'number' || !Number.isInteger(quantity) || quantity < 0 || quantity > MAX_QUANTITY) {
      warnings.push(`app.json formation.${type.slice(0, 30)}: quantity must be a whole number from 0 to ${MAX_QUANTITY}; left out`);
      continue;
    }
    out.push([type, quantity]);
  }
  return out.length > 0 ? Object.fromEntries(out) : undefined;
}

/**
 * app.json's scheduled jobs (`cron`, Dokku's format), checked whole, unlike the keys above: a bad
 * schedule or command throws `build_failed` with one line, so the push is refused before anything
 * is built. Undefined when app.json has no `cron` (or is not JSON: readAppJson warns of that).
 */
export function cronFromAppJson(text: string): CronJob[] | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(doc) || !('cron' in doc)) return undefined;
  const jobs = checkCronJobs(doc['cron']);
  return jobs.length > 0 ? jobs : undefined;
}
