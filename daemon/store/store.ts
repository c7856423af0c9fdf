import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { AbstractSublevel } from 'abstract-level';
import { Level } from 'level';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import { AddonStore } from './addon-store.js';
import { appRenameOps, type RenamedRecord, type RenameSpaces } from './app-rename-ops.js';
import { AuditStore } from './audit-store.js';
import { CertStore } from './cert-store.js';
import { CronStore } from './cron-store.js';
import { DrainStore } from './drain-store.js';
import { WebhookStore } from './webhook-store.js';
import { PipelineStore } from './pipeline-store.js';
import { storeOpenFailed } from './store-failure.js';
import { moveFolder } from '../folder-move.js';
import { StoreWriter, type Writes } from './store-writer.js';
import type { AddonRecord, AppHttps, AppMaintenance, AppRecord, Attachment, BackupRecord, AuditEntry, BuildRecord, CertRecord, DeployBranch, KeyRecord, MetricPoint, MigrationRecord, PipelineMember, PipelineRecord, ProcessLimits, PushMarker, RackReleaseRecord, ReleaseRecord, RepoLink, ReleaseStatus, Timings, TokenRecord, DrainRecord, WebhookRecord, DeliveryRecord, CronJobState } from './records.js';
import { RackReleaseStore } from './rack-release-store.js';
import { RepoStore } from './repo-store.js';
import { SchemaStore } from './schema-store.js';
import { MetricStore } from './metric-store.js';
import { TokenStore } from './token-store.js';

export type Value = AddonRecord | BackupRecord | AppRecord | BuildRecord | ReleaseRecord | KeyRecord | PushMarker | Timings | TokenRecord | AuditEntry | number | string | CertRecord | MigrationRecord | RackReleaseRecord | DrainRecord | WebhookRecord | DeliveryRecord | RepoLink | PipelineRecord | PipelineMember | MetricPoint | CronJobState;

/** A part of the database with its own key space (tokens, the audit log), written through the store's queue. */
export type Sublevel = AbstractSublevel<Level<string, Value>, string | Buffer | Uint8Array, string, Value>;

// Keys sort by app then zero-padded number, so a range read lists one app's history in order.
const pad = (n: number) => String(n).padStart(10, '0');
const k = {
  app: (name: string) => `app!${name}`,
  build: (app: string, id: number) => `build!${app}!${pad(id)}`,
  builds: (app: string) => `build!${app}!`,
  buildLog: (app: string, id: number) => `buildlog!${app}!${pad(id)}`,
  release: (app: string, v: number) => `release!${app}!${pad(v)}`,
  releases: (app: string) => `release!${app}!`,
  counter: (kind: 'build' | 'release', app: string) => `counter!${kind}!${app}`,
  key: (name: string) => `key!${name}`,
  domain: (host: string) => `domain!${host}`,
  timings: (app: string, v: number) => `timings!${app}!${pad(v)}`,
  push: (app: string) => `push!${app}`,
  renamed: (app: string) => `renamed!${app}`,
};

type Op = { type: 'put'; key: string; value: Value } | { type: 'del'; key: string };

const now = () => new Date().toISOString();

/**
 * LevelDB's own memory, outside the JS heap: its defaults (an 8 MiB block cache, 4 MiB memtables,
 * two at a time while one is flushed) are sized for a database read hot; rack's is small records
 * read now and then, and the files stay in the OS page cache anyway. bench:observability, a day of
 * metrics for 50 apps: rackd-like RSS beyond the heap 97–100 MB with the defaults, 75–83 MB with
 * these, write and read times unchanged.
 */
const LEVEL_MEMORY = { cacheSize: 1 << 20, writeBufferSize: 1 << 20 } as const;

/**
 * The only handle on rack's LevelDB. Writes go through one queue so that reading a counter and
 * writing the record that uses it cannot interleave; each new record and its counter bump are one
 * atomic batch, so a crash leaves either both or neither. Each batch is synced before the change is
 * confirmed, and once one fails every later change is refused (see StoreWriter).
 */
export class Store {
  private readonly db: Level<string, Value>;
  private readonly writer: StoreWriter;
  private readonly writes: Writes<Value>;
  readonly tokens: TokenStore;
  readonly audit: AuditStore;
  readonly certs: CertStore;
  readonly addons: AddonStore;
  readonly pipelines: PipelineStore;
  readonly schema: SchemaStore;
  /** The ledger of rack's own releases. */
  readonly rackReleases: RackReleaseStore;
  /** Connected repositories and the webhook deliveries they took. */
  readonly repos: RepoStore;
  readonly drains: DrainStore;
  /** App webhooks and their recent deliveries. */
  readonly webhooks: WebhookStore;
  /** Requests and process samples per app, at three resolutions (daemon/metrics/). */
  readonly metrics: MetricStore;
  /** Scheduled jobs' suspensions and last runs (daemon/cron/). */
  readonly cron: CronStore;
  /** The parts of the database that name apps, for apps:rename's one batch. */
  private readonly renameSpaces: RenameSpaces;

  /**
   * @param buildLogs the folder build logs are kept in (one file per build), beside the database:
   * a 10 MB log is no value to copy through LevelDB.
   * @param log where the first failed write is said, once, for the operator.
   */
  constructor(
    private readonly path: string,
    private readonly buildLogs: string,
    auditKeep = 10_000,
    log?: Logger,
  ) {
    this.db = new Level<string, Value>(path, { valueEncoding: 'json', ...LEVEL_MEMORY });
    this.writer = new StoreWriter(log);
    this.writes = this.writer.on(this.db);
    const part = (name: string) => {
      const db = this.db.sublevel<string, Value>(name, { valueEncoding: 'json' });
      return { db, writes: this.writer.on<Value>(db) };
    };
    const tokens = part('token');
    this.tokens = new TokenStore(tokens.db, tokens.writes);
    const audit = part('audit');
    this.audit = new AuditStore(audit.db, auditKeep, audit.writes);
    const certs = part('cert');
    this.certs = new CertStore(certs.db, certs.writes);
    const addons = part('addon');
    this.addons = new AddonStore(addons.db, addons.writes);
    const pipelines = part('pipeline');
    this.pipelines = new PipelineStore(pipelines.db, pipelines.writes);
    const sublevel = (name: string) => this.db.sublevel<string, Value>(name, { valueEncoding: 'json' });
    this.schema = new SchemaStore(sublevel('schema'), { root: this.db, part: sublevel }, this.writes);
    const ledger = part('rackrelease');
    this.rackReleases = new RackReleaseStore(ledger.db, ledger.writes);
    const repos = part('repo');
    this.repos = new RepoStore(repos.db, repos.writes);
    const drains = part('drain');
    this.drains = new DrainStore(drains.db, drains.writes);
    const hooks = part('webhook');
    const deliveries = part('delivery');
    this.webhooks = new WebhookStore(hooks.db, hooks.writes, deliveries.db, deliveries.writes);
    const metrics = part('metric');
    this.metrics = new MetricStore(metrics.db, metrics.writes);
    const cron = part('cron');
    this.cron = new CronStore(cron.db, cron.writes);
    this.renameSpaces = {
      root: this.db as unknown as Sublevel,
      byApp: [drains.db, hooks.db, metrics.db, cron.db],
      repo: repos.db,
      pipeline: pipelines.db,
      byField: [tokens.db, certs.db, addons.db, deliveries.db],
    };
  }

  /**
   * Fails with one line naming the cause (a full disk, another process holding the database).
   * @param migrate runs before anything reads the store, to bring its data to the schema this rack
   * reads (versions/), or to refuse a store newer than that.
   */
  async start(migrate?: (schema: SchemaStore) => Promise<unknown>): Promise<void> {
    try {
      await this.db.open();
    } catch (err) {
      throw storeOpenFailed(this.path, err);
    }
    if (migrate) await migrate(this.schema);
    await this.audit.start();
    await this.webhooks.start();
  }

  async stop(): Promise<void> {
    await this.writer.idle();
    await this.db.close();
  }

  /** Why changes are refused, once a write has failed (rackd then answers reads only). */
  get failure(): RackError | undefined {
    return this.writer.failure;
  }

  private async get<T extends Value>(key: string): Promise<T | undefined> {
    return (await this.db.get(key)) as T | undefined;
  }

  private async range<T extends Value>(prefix: string, reverse = false): Promise<T[]> {
    const out: T[] = [];
    for await (const value of this.db.values({ gte: prefix, lt: `${prefix}\xff`, reverse })) out.push(value as T);
    return out;
  }

  // ---- apps

  getApp(name: string): Promise<AppRecord | undefined> {
    return this.get<AppRecord>(k.app(name));
  }

  async requireApp(name: string): Promise<AppRecord> {
    const app = await this.getApp(name);
    if (!app) {
      const renamed = await this.renamedTo(name);
      if (renamed) throw renamedError(renamed);
      throw new RackError('no_such_app', `no app named "${name}"`);
    }
    return app;
  }

  listApps(): Promise<AppRecord[]> {
    return this.range<AppRecord>('app!');
  }

  createApp(name: string): Promise<AppRecord> {
    return this.writes.run(async () => {
      if (await this.getApp(name)) throw new RackError('app_exists', `app "${name}" already exists`);
      const app: AppRecord = { name, createdAt: now(), currentRelease: 0 };
      await this.writes.put(k.app(name), app);
      return app;
    });
  }

  /** Config kept on the app record until it has a first release to carry it. */
  setAppConfig(name: string, config: Record<string, string>, addons?: Attachment[]): Promise<void> {
    return this.writes.run(async () => {
      const app = await this.requireApp(name);
      await this.writes.put(k.app(name), { ...app, config, ...(addons ? { addons } : {}) });
    });
  }

  /** A scale or limit change and the processes now serving it, in one write. */
  setFormation(name: string, changes: Pick<AppRecord, 'formation' | 'limits' | 'serving' | 'stopped'>): Promise<void> {
    return this.writes.run(async () => {
      const app = await this.requireApp(name);
      await this.writes.put(k.app(name), { ...app, ...changes });
    });
  }

  /** apps:limits: the ceilings named change, the others stay. */
  setAppCeilings(name: string, change: Partial<ProcessLimits>): Promise<AppRecord> {
    return this.writes.run(async () => {
      const app = await this.requireApp(name);
      const next = { ...app, ceilings: { ...app.ceilings, ...change } };
      await this.writes.put(k.app(name), next);
      return next;
    });
  }

  /** The containers switched to after a restart or re-adoption (see AppRecord.serving). */
  setServing(name: string, serving: string[]): Promise<void> {
    return this.setFormation(name, { serving });
  }

  /** certs:auto / certs:redirect / certs:hsts: the named switches change, the others stay. */
  setAppHttps(name: string, change: AppHttps): Promise<AppRecord> {
    return this.writes.run(async () => {
      const app = await this.requireApp(name);
      const next = { ...app, https: { ...app.https, ...change } };
      await this.writes.put(k.app(name), next);
      return next;
    });
  }

  /** router:timeout; undefined goes back to the router's default. */
  setRouterTimeout(name: string, timeoutMs: number | undefined): Promise<AppRecord> {
    return this.writes.run(async () => {
      const { routerTimeoutMs: _old, ...app } = await this.requireApp(name);
      const next: AppRecord = timeoutMs === undefined ? app : { ...app, routerTimeoutMs: timeoutMs };
      await this.writes.put(k.app(name), next);
      return next;
    });
  }

  /** maintenance:on (a record) and maintenance:off (undefined). */
  setMaintenance(name: string, maintenance: AppMaintenance | undefined): Promise<AppRecord> {
    return this.writes.run(async () => {
      const { maintenance: _old, ...app } = await this.requireApp(name);
      const next: AppRecord = maintenance === undefined ? app : { ...app, maintenance };
      await this.writes.put(k.app(name), next);
      return next;
    });
  }

  setKeepRouterLines(name: string, on: boolean): Promise<AppRecord> {
    return this.writes.run(async () => {
      const { keepRouterLines: _old, ...app } = await this.requireApp(name);
      const next: AppRecord = on ? { ...app, keepRouterLines: true } : app;
      await this.writes.put(k.app(name), next);
      return next;
    });
  }

  /** The app a domains:add host belongs to. */
  domainOwner(host: string): Promise<string | undefined> {
    return this.get<string>(k.domain(host));
  }

  setAppBranch(name: string, branch: DeployBranch): Promise<void> {
    return this.writes.run(async () => {
      const app = await this.requireApp(name);
      await this.writes.put(k.app(name), { ...app, branch });
    });
  }

  /**
   * A domain belongs to one app at a time: the index entry and the app record change together.
   * `vet` sees every app in the same turn of the write queue, so two apps adding hosts that share
   * cookies at once cannot both pass it.
   */
  addDomain(name: string, host: string, vet: (apps: AppRecord[]) => void = () => undefined): Promise<void> {
    return this.writes.run(async () => {
      const app = await this.requireApp(name);
      vet(await this.listApps());
      const owner = await this.get<string>(k.domain(host));
      if (owner === name) throw new RackError('bad_argument', `${host} is already a domain of ${name}`);
      if (owner !== undefined) throw new RackError('bad_argument', `${host} already belongs to another app (${owner})`);
      await this.writes.batch([
        { type: 'put', key: k.domain(host), value: name },
        { type: 'put', key: k.app(name), value: { ...app, domains: [...(app.domains ?? []), host] } },
      ]);
    });
  }

  removeDomain(name: string, host: string): Promise<void> {
    return this.writes.run(async () => {
      const app = await this.requireApp(name);
      if (!(app.domains ?? []).includes(host)) throw new RackError('bad_argument', `${host} is not a domain of ${name}`);
      await this.writes.batch([
        { type: 'del', key: k.domain(host) },
        { type: 'put', key: k.app(name), value: { ...app, domains: (app.domains ?? []).filter((d) => d !== host) } },
      ]);
    });
  }

  /** Every record of the app, its counters, domains and the keys' rights on it, in one batch. */
  destroyApp(name: string): Promise<void> {
    return this.writes.run(async () => {
      const app = await this.requireApp(name);
      const ops: Op[] = [{ type: 'del', key: k.app(name) }];
      for (const prefix of [k.builds(name), `buildlog!${name}!`, k.releases(name), `timings!${name}!`]) {
        for await (const key of this.db.keys({ gte: prefix, lt: `${prefix}\xff` })) ops.push({ type: 'del', key });
      }
      ops.push({ type: 'del', key: k.counter('build', name) }, { type: 'del', key: k.counter('release', name) });
      ops.push({ type: 'del', key: k.push(name) });
      for (const host of app.domains ?? []) ops.push({ type: 'del', key: k.domain(host) });
      for (const key of await this.listKeys()) {
        if (key.apps.includes(name)) ops.push({ type: 'put', key: k.key(key.name), value: { ...key, apps: key.apps.filter((a) => a !== name) } });
      }
      // Tokens lose the app in the same batch: a new app of the same name is not theirs.
      const tokenOps = (await this.tokens.list())
        .filter((t) => t.apps.includes(name))
        .map((t) => ({ type: 'put' as const, sublevel: this.tokens.db, key: `name!${t.name}`, value: { ...t, apps: t.apps.filter((a) => a !== name) } }));
      // The connected repository goes too: its secret and deliveries were the old app's.
      const repoOps = (await this.repos.forgetOps(name)).map((op) => ({ ...op, sublevel: this.repos.db }));
      // Drains and webhooks too: a new app of the same name must not send its logs and events to them.
      const hookOps = [...(await this.drains.removalOps(name)), ...(await this.webhooks.removalOps(name)), ...(await this.cron.removalOps(name))];
      // Its place in a pipeline goes too: a new app of the same name is not promoted into.
      const pipelineOps = (await this.pipelines.memberOf(name)) ? [{ type: 'del' as const, sublevel: this.pipelines.db, key: this.pipelines.memberKey(name) }] : [];
      await this.writes.batch([...ops, ...tokenOps, ...repoOps, ...hookOps, ...pipelineOps, ...(await this.metrics.forgetOps(name))] as Op[]);
      await rm(join(this.buildLogs, name), { recursive: true, force: true });
    });
  }

  /**
   * apps:rename: every record of the app (its history, counters, domains, the keys' and tokens'
   * rights, drains, webhooks, metrics, repository link, pipeline place, certificates) moves to the
   * new name in one batch, with the `renamed` record that tells the old name's pushes where it went.
   * The checks run in the same turn of the write queue, so two renames to one name cannot both pass.
   */
  renameApp(from: string, to: string, remote: string, vet: (apps: AppRecord[]) => void): Promise<RenamedRecord> {
    return this.writes.run(async () => {
      await this.requireApp(from);
      if (await this.getApp(to)) throw new RackError('app_exists', `app "${to}" already exists`);
      vet(await this.listApps());
      if (await this.get(k.push(from))) throw new RackError('app_busy', `a push to ${from} is still being checked (apps:info shows it); rename it once that is done`);
      const renamed: RenamedRecord = { from, to, remote, at: now(), settled: false };
      // Nothing is recorded as serving under the new name until its own processes are switched to:
      // the old ones carry the old name's labels, and adoption would never find them under the new.
      const ops = (await appRenameOps(this.renameSpaces, from, to)).map((op) =>
        op.type === 'put' && op.key === k.app(to) ? { ...op, value: { ...(op.value as AppRecord), serving: [] } } : op,
      );
      await this.writes.batch([...ops, { type: 'del', key: k.renamed(to) }, { type: 'put', key: k.renamed(from), value: renamed as unknown as Value }]);
      return renamed;
    });
  }

  /** Where an app that is no longer there went (apps:rename), unless its old name was taken again since. */
  async renamedTo(name: string): Promise<RenamedRecord | undefined> {
    const renamed = await this.get<Value>(k.renamed(name));
    if (renamed === undefined || (await this.getApp(name))) return undefined;
    return renamed as unknown as RenamedRecord;
  }

  /** Renames whose files, images or processes have not yet followed (a rackd died in between). */
  async unsettledRenames(): Promise<RenamedRecord[]> {
    return (await this.range<Value>('renamed!')).map((r) => r as unknown as RenamedRecord).filter((r) => !r.settled);
  }

  settleRename(from: string): Promise<void> {
    return this.writes.run(async () => {
      const renamed = await this.get<Value>(k.renamed(from));
      if (renamed !== undefined) await this.writes.put(k.renamed(from), { ...(renamed as unknown as RenamedRecord), settled: true } as unknown as Value);
    });
  }

  /** Build logs follow a renamed app; run again at start until it is settled, so a move cut short is finished. */
  async moveBuildLogs(from: string, to: string): Promise<void> {
    await moveFolder(join(this.buildLogs, from), join(this.buildLogs, to));
  }

  // ---- builds

  createBuild(app: string, fields: Pick<BuildRecord, 'commit' | 'createdBy' | 'source'>): Promise<BuildRecord> {
    return this.writes.run(async () => {
      const id = ((await this.get<number>(k.counter('build', app))) ?? 0) + 1;
      const build: BuildRecord = {
        app,
        id,
        commit: fields.commit,
        createdBy: fields.createdBy,
        ...(fields.source ? { source: fields.source } : {}),
        status: 'building',
        buildpacks: [],
        processTypes: {},
        image: null,
        createdAt: now(),
        finishedAt: null,
        durationMs: null,
        error: null,
      };
      await this.writes.batch([
        { type: 'put', key: k.build(app, id), value: build },
        { type: 'put', key: k.counter('build', app), value: id },
      ]);
      return build;
    });
  }

  /** The one rewrite a build gets: from `building` to its final state, with its output kept beside it. */
  finishBuild(build: BuildRecord, log: Buffer[]): Promise<void> {
    return this.writes.run(async () => {
      // The log goes to a file beside the database, page by page: up to 10 MB, never copied whole.
      await this.writeBuildLog(build.app, build.id, log);
      await this.writes.put(k.build(build.app, build.id), build);
    });
  }

  private buildLogPath(app: string, id: number): string {
    return join(this.buildLogs, app, `b${id}.log`);
  }

  private async writeBuildLog(app: string, id: number, pages: Buffer[]): Promise<void> {
    const path = this.buildLogPath(app, id);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const temp = `${path}.tmp`;
    const fh = await open(temp, 'w', 0o600);
    try {
      for (const page of pages) await fh.write(page);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(temp, path);
  }

  /**
   * Builds still `building` when rackd starts were cut short by a crash or a kill: nothing will
   * finish them, so they are marked failed (with a log line saying so). Returns how many.
   */
  failInterruptedBuilds(error = 'interrupted: rackd stopped during the build'): Promise<BuildRecord[]> {
    return this.writes.run(async () => {
      const failed: BuildRecord[] = [];
      const ops: Op[] = [];
      for await (const [key, value] of this.db.iterator({ gte: 'build!', lt: 'build!\xff' })) {
        const build = value as BuildRecord;
        if (build.status !== 'building' && build.status !== 'pending') continue;
        const done: BuildRecord = { ...build, status: 'failed', error, finishedAt: now() };
        failed.push(done);
        ops.push({ type: 'put', key, value: done });
        const log = (await this.getBuildLog(build.app, build.id)) ?? '';
        await this.writeBuildLog(build.app, build.id, [Buffer.from(`${log}${log === '' ? '' : '\n'} !     ${error}`)]);
      }
      if (ops.length > 0) await this.writes.batch(ops);
      return failed;
    });
  }

  /** The build's output: its file, or the copy kept in the database by builds from before the files. */
  async getBuildLog(app: string, id: number): Promise<string | undefined> {
    try {
      return await readFile(this.buildLogPath(app, id), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return this.get<string>(k.buildLog(app, id));
  }

  getBuild(app: string, id: number): Promise<BuildRecord | undefined> {
    return this.get<BuildRecord>(k.build(app, id));
  }

  listBuilds(app: string): Promise<BuildRecord[]> {
    return this.range<BuildRecord>(k.builds(app), true);
  }

  // ---- releases

  createRelease(
    app: string,
    fields: Omit<ReleaseRecord, 'app' | 'version' | 'createdAt' | 'status' | 'error'>,
  ): Promise<ReleaseRecord> {
    return this.writes.run(async () => {
      const version = ((await this.get<number>(k.counter('release', app))) ?? 0) + 1;
      const release: ReleaseRecord = { ...fields, app, version, createdAt: now(), status: 'pending', error: null };
      await this.writes.batch([
        { type: 'put', key: k.release(app, version), value: release },
        { type: 'put', key: k.counter('release', app), value: version },
      ]);
      return release;
    });
  }

  /**
   * Records a rollout's outcome. On success the app's current release and the processes serving it
   * move in the same batch, so "current" never points at a release that did not finish.
   */
  finishRelease(
    release: ReleaseRecord,
    status: Exclude<ReleaseStatus, 'pending'>,
    error: string | null,
    serving?: string[],
  ): Promise<void> {
    return this.writes.run(async () => {
      const done: ReleaseRecord = { ...release, status, error };
      const ops: Op[] = [
        { type: 'put', key: k.release(release.app, release.version), value: done },
      ];
      if (status === 'succeeded') {
        const app = await this.requireApp(release.app);
        // A release starts every process of the formation again: what ps:stop stopped too.
        const { stopped: _stopped, ...rest } = app;
        ops.push({ type: 'put', key: k.app(app.name), value: { ...rest, currentRelease: release.version, ...(serving ? { serving } : {}) } });
      }
      await this.writes.batch(ops);
    });
  }

  /** Where a release's rollout spent its time; written after the drain, so kept beside the release. */
  setReleaseTimings(app: string, version: number, timings: Timings): Promise<void> {
    return this.writes.run(() => this.writes.put(k.timings(app, version), timings));
  }

  getReleaseTimings(app: string, version: number): Promise<Timings | undefined> {
    return this.get<Timings>(k.timings(app, version));
  }

  getRelease(app: string, version: number): Promise<ReleaseRecord | undefined> {
    return this.get<ReleaseRecord>(k.release(app, version));
  }

  /** The newest release (that passes `match`), read newest first without listing the history. */
  async latestRelease(app: string, match: (r: ReleaseRecord) => boolean = () => true): Promise<ReleaseRecord | undefined> {
    const prefix = k.releases(app);
    for await (const value of this.db.values({ gte: prefix, lt: `${prefix}\xff`, reverse: true })) {
      if (match(value as ReleaseRecord)) return value as ReleaseRecord;
    }
    return undefined;
  }

  listReleases(app: string): Promise<ReleaseRecord[]> {
    return this.range<ReleaseRecord>(k.releases(app), true);
  }

  // ---- pushes in flight (pushes to one app are serialised, so one marker per app)

  putPushMarker(marker: PushMarker): Promise<void> {
    return this.writes.run(() => this.writes.put(k.push(marker.app), marker));
  }

  clearPushMarker(app: string): Promise<void> {
    return this.writes.run(() => this.writes.del(k.push(app)));
  }

  listPushMarkers(): Promise<PushMarker[]> {
    return this.range<PushMarker>('push!');
  }

  // ---- keys

  /** Adds a key; a name or a public key already registered is refused. */
  addKey(key: KeyRecord): Promise<void> {
    return this.writes.run(async () => {
      if (await this.get(k.key(key.name))) throw new RackError('bad_argument', `a key named "${key.name}" already exists`);
      const same = (await this.listKeys()).find((x) => x.publicKey === key.publicKey);
      if (same) throw new RackError('bad_argument', `that public key is already registered as "${same.name}"`);
      await this.writes.put(k.key(key.name), key);
    });
  }

  /** Refuses to remove the last admin key: rack would have no one left to manage it. */
  removeKey(name: string): Promise<KeyRecord> {
    return this.writes.run(async () => {
      const key = await this.get<KeyRecord>(k.key(name));
      if (!key) throw new RackError('bad_argument', `no key named "${name}"`);
      if (key.role === 'admin' && (await this.listKeys()).filter((x) => x.role === 'admin').length === 1) {
        throw new RackError('forbidden', `"${name}" is the last admin key and cannot be removed`);
      }
      await this.writes.del(k.key(name));
      return key;
    });
  }

  async getKey(name: string): Promise<KeyRecord | undefined> {
    return this.get<KeyRecord>(k.key(name));
  }

  async listKeys(): Promise<KeyRecord[]> {
    // Keys written before scoped keys existed have no `apps`.
    return (await this.range<KeyRecord>('key!')).map((key) => ({ ...key, apps: key.apps ?? [] }));
  }

}

/** What a command or push naming an app's old name is told: one line with the way to the new one. */
export function renamedError(renamed: RenamedRecord): RackError {
  return new RackError('no_such_app', `${renamed.from} was renamed to ${renamed.to}: git remote set-url rack ${renamed.remote}`);
}
