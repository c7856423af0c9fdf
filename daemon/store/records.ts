/** The records rack keeps in LevelDB. Finished builds and releases are never rewritten. */
/**
 * The store owns the shapes it keeps: the modules that compute them (certificates, health checks,
 * limits, builders) import these types from here, never the other way round.
 */
import type { Timings } from '../phase-timings.js';

export interface AppRecord {
  name: string;
  createdAt: string;
  /** Release number serving now; 0 before the first deploy. */
  currentRelease: number;
  /** Config set before the app's first release; the first push starts from it. */
  config?: Record<string, string>;
  /** Host names added with domains:add, beside the default APP.RACK_DOMAIN. */
  domains?: string[];
  /** Instance counts set with ps:scale; types not named here run their release's default. */
  formation?: Record<string, number>;
  /** Limits set with ps:limit, by process type; the rest run with the defaults. */
  limits?: Record<string, Partial<ProcessLimits>>;
  /** apps:limits: how far keys that are not an admin's may raise one process's limits (isolation.ts's defaults where absent). */
  ceilings?: Partial<ProcessLimits>;
  /**
   * The containers that were health-checked and switched to, by ID: what a restarted rackd
   * re-adopts. Anything else of the app's that runs was never checked and is removed.
   */
  serving?: string[];
  /**
   * The one branch that deploys: main or master, whichever the app was first pushed with. Absent on
   * apps from before it was recorded (then whichever of the two the repo has, main when both).
   */
  branch?: DeployBranch;
  /** certs:auto, certs:redirect and certs:hsts; absent means all off. */
  https?: AppHttps;
  /** router:timeout: how long the app has to start an answer, in ms; absent: the router's 30 s. */
  routerTimeoutMs?: number;
  /** The router's per-request lines are kept for this app even when nobody follows (`logs:router on`). */
  keepRouterLines?: boolean;
  /** Add-ons attached before the app's first release (its config carries their variables). */
  addons?: Attachment[];
  /** `maintenance:on`: the router answers 503 with a page; absent: off. */
  maintenance?: AppMaintenance;
}

export interface AppMaintenance {
  since: string;
  by: string;
  /** Where the page came from (`--page URL`); absent: rack's own page. */
  pageUrl?: string;
  /** The copy fetched from pageUrl when maintenance went on: the router serves it, never fetching. */
  page?: string;
}

/**
 * An add-on attached to an app: the variables it set in the release's config (`ALIAS_URL`, ...),
 * named so that a rollback can tell them from the user's own.
 */
export interface Attachment {
  addon: string;
  /** The variables' prefix: DATABASE, REDIS, or what --as named. */
  alias: string;
  /** The config keys this attachment owns. */
  keys: string[];
}

export type AddonKind = 'postgres' | 'redis';

/** A backing service: one container on its own named volume, joined to the networks of the apps attached. */
export interface AddonRecord {
  name: string;
  kind: AddonKind;
  /** The server's version when it was made (`15.14`); the major is pinned by the image tag. */
  version: string;
  image: string;
  /** The app it was created for, whose members may act on it while nothing is attached; '' once that app is destroyed. */
  createdFor: string;
  createdBy: string;
  createdAt: string;
  /** Postgres: the role and database apps use; absent for Redis. */
  user?: string;
  database?: string;
  /** Random; shown only in the config of attached apps. */
  password: string;
  /** When the last daily backup was taken. */
  lastDailyBackupAt?: string;
  /** Set once addons:destroy has taken its final backup: a restarted rackd finishes the removal. */
  destroying?: boolean;
  /** Set once its service first took connections; one never ready is undone at start. */
  ready?: boolean;
  /**
   * On a Swarm: where apps on the workers reach it, its port published on the manager's Swarm
   * address (the machine that holds its volume). Absent on one machine: only attached apps'
   * networks reach it there.
   */
  published?: { node: string; host: string; port: number };
}

export type BackupTrigger = 'manual' | 'daily' | 'before-restore' | 'before-destroy';

/** A backup file in the backup folder, as `addons:backups` lists it. */
export interface BackupRecord {
  addon: string;
  /** `b3`: numbered per add-on. */
  id: string;
  kind: AddonKind;
  /** The file's name inside the add-on's backup folder. */
  file: string;
  bytes: number;
  trigger: BackupTrigger;
  createdAt: string;
  createdBy: string;
}

export interface AppHttps {
  /** Keep an ACME certificate for each of the app's hosts. */
  auto?: boolean;
  /** Answer plain HTTP with a 308 to https on hosts that have a certificate. */
  redirect?: boolean;
  /** Send Strict-Transport-Security on HTTPS answers. */
  hsts?: boolean;
}

/**
 * A host's certificate as `certs` shows it; the PEM itself is the file RACK_HOME/certs/HOST.pem.
 * An automatic one may have no certificate yet (its first order pending or failing).
 */
export interface CertRecord {
  host: string;
  /** The app the host belongs to (`rack` for RACK_CONSOLE_HOST). */
  app: string;
  source: 'manual' | 'acme';
  certificate?: CertificateInfo;
  /** How ordering went, for automatic certificates. */
  acme?: AcmeStatus;
  updatedAt: string;
}

export interface AcmeStatus {
  /** Orders failed in a row; 0 after a success. */
  failures: number;
  lastError?: string;
  lastAttemptAt?: string;
  /** No order before this (backoff after failures). */
  nextAttemptAt?: string;
}

export type DeployBranch = 'main' | 'master';

/**
 * Written before a pushed release rolls out, cleared once git's ref update has been checked against
 * it. One left at start means rackd died in between: the branch and what serves may disagree.
 */
export interface PushMarker {
  app: string;
  release: number;
  commit: string;
  branch: DeployBranch;
  /** The branch head the push started from (all zeros when it created the branch). */
  oldRev: string;
  createdAt: string;
  /** Set when mending the branch or what serves failed: the marker stays to be tried again. */
  lastError?: string;
  failedAt?: string;
}

/**
 * A repository connected with `repo:connect`: where rack fetches the app's source from when the
 * host's webhook says the branch moved. The secret and the token are kept as given (like an
 * add-on's password): rack must sign with the one and send the other, so it cannot keep a hash.
 */
export interface RepoLink {
  app: string;
  /** As the user gave it, without credentials (https, http, ssh:// or scp-like `git@host:path`). */
  url: string;
  transport: 'http' | 'ssh';
  /** The branch at the host whose pushes deploy. */
  branch: string;
  /** The webhook's shared secret (HMAC key for GitHub and Gitea, the token GitLab sends). */
  secret: string;
  /** An https access token, sent as HTTP Basic; never in a URL or an argument. */
  token?: string;
  /** `repo:connect --status-api URL`: where review apps' commit statuses go, in place of the API the URL implies. */
  statusApi?: string;
  /** ssh: the public half of the app's deploy key (its private half is a 0600 file in RACK_HOME). */
  deployKey?: string;
  createdAt: string;
  createdBy: string;
  /** reviewapps:enable: pull requests opened or updated make or redeploy `APP-pr-N`; closed ones destroy it. */
  reviewApps?: boolean;
  /** What the newest verified delivery was and what came of it (repo:info). */
  lastDelivery?: DeliveryOutcome;
}

export interface DeliveryOutcome {
  id: string;
  host: 'github' | 'gitlab' | 'gitea';
  event: string;
  at: string;
  commit?: string;
  /** `deployed vN`, `ignored: ...`, `skipped: ...`, `failed: ...`, or `queued` while it waits. */
  result: string;
}

export type BuildStatus = 'pending' | 'building' | 'succeeded' | 'failed';

export interface BuildRecord {
  app: string;
  id: number;
  commit: string;
  status: BuildStatus;
  /** How the image was made; absent on builds from before Dockerfile support (buildpacks). */
  builder?: Builder;
  /** From app.json `healthchecks.web`, when the app has one. */
  healthcheck?: Partial<HealthCheckOptions>;
  /** From app.json `cron`, checked at build time; absent when the app has none (and on older builds). */
  cron?: CronJob[];
  /** app.json `formation`: instance counts that replace the defaults (web 1, others 0). */
  appFormation?: Record<string, number>;
  buildpacks: string[];
  /** Process type → command, from the Procfile or the buildpack's defaults. */
  processTypes: Record<string, string>;
  image: string | null;
  createdAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  error: string | null;
  createdBy: string;
  /** Receive and build phases, in ms. */
  timings?: Timings;
  /** Absent: a push (or a rebuild of the pushed branch). */
  source?: BuildSource;
}

/** `recorded`: made with --no-deploy, waiting to be promoted. */
export type ReleaseStatus = 'pending' | 'succeeded' | 'failed' | 'recorded';

export type { Timings };

export interface ReleaseRecord {
  app: string;
  version: number;
  build: number;
  image: string;
  builder?: Builder;
  healthcheck?: Partial<HealthCheckOptions>;
  /** The scheduled jobs this release runs while current (its build's app.json `cron`); absent on older releases. */
  cron?: CronJob[];
  processTypes: Record<string, string>;
  /** app.json `formation` of its build: the defaults ps:scale overrides. */
  appFormation?: Record<string, number>;
  /** Process type → instance count this release runs (web 1, other types 0 until scaled). */
  formation?: Record<string, number>;
  config: Record<string, string>;
  /** The add-ons attached in this release; their variables are in `config`. */
  addons?: Attachment[];
  description: string;
  /** Present on a release promoted from another app's: `build` is then that app's build. */
  promotedFrom?: PromotedFrom;
  createdBy: string;
  createdAt: string;
  status: ReleaseStatus;
  error: string | null;
}

/** admin: everything; app: everything on its apps; deploy: push and read history of its apps. */
export type KeyRole = 'admin' | 'app' | 'deploy';

export interface KeyRecord {
  name: string;
  /** `ssh-ed25519 AAAA...`: algorithm and base64 blob, no comment. */
  publicKey: string;
  fingerprint: string;
  role: KeyRole;
  /** The apps an `app` or `deploy` key acts on; empty for admin keys. */
  apps: string[];
  createdAt: string;
}

/**
 * An API token. Only its SHA-256 is kept: the token itself is shown once, at creation. Tokens are
 * long random strings, not passwords, so a fast hash is enough to make a stolen database useless.
 */
export interface TokenRecord {
  name: string;
  /** Hex SHA-256 of the whole token. */
  hash: string;
  role: KeyRole;
  apps: string[];
  createdAt: string;
  createdBy: string;
  /** ISO time after which the token is refused; null: never. */
  expiresAt: string | null;
  lastUsedAt: string | null;
}

/** One change to rack, by whom, from where: what `audit` lists. */
export interface AuditEntry {
  /** Increasing; the order changes were made in. */
  id: number;
  time: string;
  /** `rack`: what rack did on its own schedule (a scheduled job's failed run), no person asking. */
  actor: { kind: 'key' | 'token' | 'webhook' | 'rack'; name: string };
  via: 'ssh' | 'http' | 'rack';
  address: string;
  /** The app changed; null for rack-wide changes (keys, tokens). */
  app: string | null;
  /** The command's name (`config:set`, `git push`, ...). */
  action: string;
  /** What changed, never a secret: config keys without values, a release number, a key's name. */
  detail: string;
  /** `ok`, or the error code the change failed with. */
  outcome: string;
}

/** What `certs` shows of a certificate; never the key. */
export interface CertificateInfo {
  /** The DNS names it covers (subjectAltName), as the certificate lists them. */
  names: string[];
  issuer: string;
  notBefore: string;
  notAfter: string;
  /** SHA-256 of the leaf, hex: what a browser's certificate viewer shows. */
  fingerprint: string;
}

export interface HealthCheckOptions {
  path: string;
  /** One attempt's timeout. */
  timeoutMs: number;
  intervalMs: number;
  /** Give up after this long in all (the deploy timeout). */
  deadlineMs: number;
  /** Give up after this many failed probes (app.json `attempts`); unlimited when absent. */
  attempts?: number;
  /** Wait before the first probe (app.json `initialDelay`). */
  initialDelayMs?: number;
  /** Text the answer's body must contain (app.json `content`, as Dokku's checks). */
  content?: string;
}

/**
 * What a tenant's container may use and do. Every app process, one-off `run` and release phase
 * runs as an unprivileged user with no capabilities and `no-new-privileges`, inside limits: one
 * app must not be able to take the host down (Heroku's smallest dyno has 512 MB and 256 processes).
 */
export interface ProcessLimits {
  /** Hard memory limit in MiB; no swap beyond it. */
  memoryMb: number;
  /**
   * A hard cap in CPU cores (fractions allowed), as a CFS quota, on top of an equal weight for
   * every process. 0 or absent: no cap, the weight alone (`ps:limit web cpu=shared`).
   */
  cpu?: number;
  /** Process (thread) count inside the container. */
  pids: number;
  /**
   * Writable space in MiB: what the process may write anywhere in its container (`disk-limit.ts`).
   * Absent: the rack's RACK_DISK_LIMIT, which the runtime applies.
   */
  diskMb?: number;
}

export type Builder = 'buildpacks' | 'dockerfile';

/** What a job does when its next fire comes while a run of it still goes (Dokku's words). */
export type CronConcurrency = 'allow' | 'forbid' | 'replace';

/** One entry of app.json `cron`, as checked at build time (daemon/cron/cron-jobs.ts). */
export interface CronJob {
  /** Stable while schedule and command stay the same (or the one app.json gave): what suspensions are kept by. */
  id: string;
  /** Five fields, UTC; `@daily` and the like already spelled out. */
  schedule: string;
  command: string;
  concurrency: CronConcurrency;
}

/** How a run of a scheduled job ended. */
export interface CronRunRecord {
  startedAt: string;
  /** Absent while it runs; a rackd that stops mid-run finds it so at start (`interrupted`). */
  finishedAt?: string;
  /** The process's exit status; absent when it never ran or was interrupted. */
  exitCode?: number;
  /** `schedule`, or the key or token that asked with cron:run. */
  trigger: string;
  /** Why a run went otherwise than by its exit status: `timeout`, `interrupted`, `replaced`, an error. */
  error?: string;
}

/** What rack keeps of a job between releases and restarts, keyed by app and job ID. */
export interface CronJobState {
  app: string;
  id: string;
  suspended?: boolean;
  lastRun?: CronRunRecord;
}

/** Which rack: its package version and the git commit it was built from (`unknown` when not known). */
export interface RackBuild {
  version: string;
  commit: string;
}

/**
 * A step of the store's schema, as it was taken: which migration, which way, when, by which rack.
 * Written in the same batch as the migration's own changes and the new schema number.
 */
export interface MigrationRecord {
  /** Increasing; the order migrations ran in. */
  id: number;
  name: string;
  from: number;
  to: number;
  direction: 'up' | 'down';
  at: string;
  by: RackBuild & { installDir: string };
  /**
   * For an `up`: whether this rack knows how to take it back down. An older rack reading the store
   * cannot know the newer one's migrations; this tells it whether the way back exists.
   */
  reversible: boolean;
}

export type RackReleaseStatus = 'pending' | 'succeeded' | 'failed';

/**
 * One of rack's own releases, `rN`: what `rack:releases` lists. Written when rackd starts as a
 * version/commit other than the last entry's (an install, or an update made by hand), and by
 * `rack:update` / `rack:rollback`, which open it `pending` and finish it once.
 */
export interface RackReleaseRecord {
  id: number;
  version: string;
  commit: string;
  /** What ran before; null on the first install. */
  from: RackBuild | null;
  /** `install`, `update`, `rollback`, or `start` (rackd found itself changed under it). */
  kind: 'install' | 'update' | 'rollback' | 'start';
  description: string;
  /** The key or token that asked; `rackd` for what rackd noticed at start. */
  createdBy: string;
  createdAt: string;
  status: RackReleaseStatus;
  finishedAt: string | null;
  durationMs: number | null;
  /** The step an update or rollback failed at (`fetch`, `build`, `migrate`, `handover`, ...). */
  failedStep: string | null;
  error: string | null;
  /** The store's schema once this release was running. */
  schema: number;
  /** Where this release's install is (absent on entries from before rack:update). */
  dir?: string;
  /** How long each step of an update or rollback took, in order (`fetch`, `build`, ..., `start`). */
  phases?: RackReleasePhase[];
}

export interface RackReleasePhase {
  name: string;
  ms: number;
}

/** A log drain of an app (`drains:add`): where its lines go. Delivery counts live in memory. */
export interface DrainRecord {
  /** A UUID; `drains:remove` takes it or the URL. */
  id: string;
  app: string;
  url: string;
  /** `d.` and a UUID, sent with every batch (Logplex-Drain-Token) so a receiver knows the drain. */
  token: string;
  createdAt: string;
  createdBy: string;
}

/** An app webhook (`webhooks:add`): which events are POSTed where, signed with `secret`. */
export interface WebhookRecord {
  id: string;
  app: string;
  url: string;
  /** Event kinds (app-events.ts); all of them when the user named none. */
  events: string[];
  /** The HMAC-SHA256 key; shown once, at `webhooks:add`. */
  secret: string;
  createdAt: string;
  createdBy: string;
}

/** One event's delivery to one webhook: its attempts so far and the last answer. */
export interface DeliveryRecord {
  /** Sequence in the store: the newest N are kept. */
  seq: number;
  /** A UUID, sent in the payload and a header, so a receiver can drop a retried one it had. */
  id: string;
  app: string;
  webhook: string;
  event: string;
  action: string;
  status: 'pending' | 'retrying' | 'succeeded' | 'failed';
  attempts: number;
  /** The receiver's HTTP status at the last attempt; absent when it gave none (refused, timed out). */
  lastCode?: number;
  /** The start of its answer, or why there was none. */
  lastAnswer?: string;
  createdAt: string;
  updatedAt: string;
}

/** The stages of a pipeline, in the order a build is promoted through them. */
export const PIPELINE_STAGES = ['development', 'staging', 'production'] as const;
export type PipelineStage = (typeof PIPELINE_STAGES)[number];

/** A pipeline: apps that run one build in turn (Heroku's pipelines). Its apps are `PipelineMember`s. */
export interface PipelineRecord {
  name: string;
  createdAt: string;
  createdBy: string;
}

/** An app's place in a pipeline; an app is in one pipeline at most. */
export interface PipelineMember {
  app: string;
  pipeline: string;
  stage: PipelineStage;
  addedAt: string;
}

/** Where a promoted release's image came from (`pipelines:promote`). */
export interface PromotedFrom {
  app: string;
  release: number;
  /** The build that made the image, and the app it is a build of (the first app of a chain of promotions). */
  build: number;
  buildApp: string;
  /** The image's ID (`sha256:...`), the same in the source's and the target's release. */
  imageId: string;
}

/** How a build got its source, when not by a push: a tarball sent to the builds API. */
export interface BuildSource {
  type: 'tarball';
  /** What the sender called this source (Heroku's source_blob.version: a CI commit or tag). */
  version?: string;
  /** Heroku's source_blob.version_description: a line about it (a commit subject), for the release. */
  description?: string;
}

/**
 * What rack measured of one app over `span` seconds from `at` (metrics): the router's counts of its
 * requests, and samples of its processes by type. A coarser point is the sum of the finer ones it
 * covers (daemon/metrics/metric-points.ts), so counts stay exact through downsampling.
 */
export interface MetricPoint {
  /** Start of the span, ms since the epoch (a multiple of the span). */
  at: number;
  /** 10, 60 or 600. */
  span: number;
  /** Requests by status class: [1xx, 2xx, 3xx, 4xx, 5xx]; absent when the router saw none. */
  requests?: number[];
  bytesIn?: number;
  bytesOut?: number;
  /** Latency histogram (daemon/latency-histogram.ts): bucket index → requests. */
  latency?: Record<string, number>;
  /** Samples of the app's processes, by process type. */
  processes?: Record<string, ProcessMetric>;
}

export interface ProcessMetric {
  /** CPU time the type's processes used in the span, ms (CPU% = cpuMs / span / 10). */
  cpuMs: number;
  /** The type's memory in use summed over its samples, and how many samples: the mean is the quotient. */
  memorySum: number;
  samples: number;
  /** The most memory the type used at one sample, bytes. */
  memoryMax: number;
  /** Processes of the type seen, and running, at most at one sample. */
  count: number;
  running: number;
  /** Crash restarts that happened in the span. */
  restarts: number;
}
