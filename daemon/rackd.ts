import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LoginThrottle } from './access/login-throttle.js';
import { AuditLog } from './audit/audit-log.js';
import { apiHandler, publicPaths } from './api/api-handler.js';
import { HttpServer } from './http/http-server.js';
import { Console } from './console/console-handler.js';
import { TokenAuth } from './http/token-auth.js';
import { GitHttp } from './git/git-http.js';
import { Builder } from './build/builder.js';
import { ScheduledJobs } from './cron/scheduled-jobs.js';
import { ensureStackImage, STACK_RUN_IMAGE } from './build/stack-image.js';
import { AddonBackups } from './addons/addon-backups.js';
import { AddonImages } from './addons/addon-images.js';
import { Addons } from './addons/addons.js';
import { findCommand, invoke, runCommand } from './commands/command-runner.js';
import type { Services } from './commands/command.js';
import { tokenize } from './commands/command-line.js';
import { parseRunLine, runOneOff } from './commands/run.js';
import { paths, type RackConfig } from './config.js';
import { domainsAgainstRule } from './domain-ownership.js';
import { ControlServer } from './control/control-server.js';
import { Pipeline } from './pipeline.js';
import { ProcessControl } from './process-control.js';
import { AppRename } from './app-rename.js';
import { Promotion } from './pipelines/promotion.js';
import { ImageRetention } from './release/image-retention.js';
import { DeployLock } from './deploy-lock.js';
import { GitService, HOOKS_DIR, isGitCommand } from './git/git-service.js';
import { PushCheck } from './git/push-check.js';
import { preReceiveHandler } from './git/push-hook.js';
import { PushLock } from './git/push-lock.js';
import { PushReceiver } from './git/push-receiver.js';
import { repoDir, sweepQuarantines } from './git/repo.js';
import { PushSessions } from './git/push-sessions.js';
import type { Logger } from './log.js';
import { RackError } from './rack-error.js';
import { LogHub } from './logs/log-hub.js';
import { LogStore } from './logs/log-store.js';
import { appEvents } from './app-events.js';
import { Drains } from './drains/drains.js';
import { tellEventsInLogs } from './drains/event-lines.js';
import { AppWebhooks } from './notifications/app-webhooks.js';
import { cgroupUsage } from './metrics/cgroup-usage.js';
import { MetricsRecorder } from './metrics/metrics-recorder.js';
import { ProcessSampler } from './metrics/process-sampler.js';
import { RouterClient } from './router/router-client.js';
import { routerSettings } from './router/router-spawner.js';
import { CONTROL_PLANE_APP } from './router/upstream.js';
import { DiskLimit, unmountUnder } from './runtime/disk-limit.js';
import { DockerRuntime } from './runtime/docker-runtime.js';
import { installHostGuard } from './runtime/host-guard.js';
import { registerAdminKeys } from './ssh/admin-keys.js';
import { loadOrCreateHostKey } from './ssh/host-key.js';
import { SshServer, type ExecRequest } from './ssh/ssh-server.js';
import { AcmeIssuer } from './certs/acme-issuer.js';
import { AutoCertificates } from './certs/auto-certificates.js';
import { Certificates } from './certs/certificates.js';
import { Store } from './store/store.js';
import { Supervisor } from './supervisor/supervisor.js';
import { FIRST_SCHEMA } from './store/schema-store.js';
import { MIGRATIONS } from './versions/migrations.js';
import { rackBuildOf } from './versions/rack-build.js';
import { noteRunningRack, type SwitchFailure } from './versions/rack-ledger.js';
import { askSwitch } from './versions/launcher-link.js';
import { RackUpdates, type SwitchRequest } from './versions/rack-updates.js';
import { runMigrate } from './versions/migrate-command.js';
import type { SwitchAnswer } from './launcher/launcher-protocol.js';
import { textOutput } from './user-output.js';
import { latestSchema, migrateUp } from './versions/schema-migration.js';
import { CommitStatuses } from './workflows/commit-status.js';
import { runPostdeploy } from './workflows/postdeploy.js';
import { RepoDeploys } from './workflows/repo-deploys.js';
import { fetchBranch } from './workflows/repo-fetch.js';
import { RepoLinks } from './workflows/repo-links.js';
import { ReviewApps } from './workflows/review-apps.js';
import { WebhookReceiver } from './workflows/webhook-receiver.js';

/** When this process started: rackd's uptime, and how long its start took (the ledger). */
const STARTED_AT = new Date(performance.timeOrigin);

export interface Ports {
  ssh: number;
  http: number;
  /** 0 with RACK_HTTPS_PORT=off. */
  https: number;
}

/**
 * The daemon: wires the components and starts them in dependency order; `stop()` goes in reverse.
 * Running apps are left running on stop, to be re-adopted by the next start.
 */
export class Rackd {
  private readonly stops: (() => Promise<void>)[] = [];
  private readonly lock = new DeployLock();
  private readonly pushLock = new PushLock();
  /** Set by stop(): new pushes and commands are refused while those under way finish. */
  private stopping = false;
  private receiver: PushReceiver | undefined;
  private repoDeploys: RepoDeploys | undefined;
  /** Settles when the stop's grace (RACK_STOP_GRACE) is over: waits for work under way end there. */
  private graceOver: Promise<void> = new Promise(() => {});
  /** git sessions over ssh under way (a push, a fetch): stop lets them end before the ssh server's. */
  private readonly gitSessions = new Set<Promise<number>>();
  /** The ssh channel of a rack:update under way, kept open while the rest stops for the switch. */
  private keep: unknown;
  /** Why the last switch to another rackd failed, for the ledger when this one starts again. */
  private switchFailure: SwitchFailure | undefined;
  private handOver!: () => void;
  /** Settles once a switch to another rackd succeeded and its client was told: this process may exit. */
  readonly handedOver = new Promise<void>((resolve) => (this.handOver = resolve));
  private switched = false;

  constructor(
    private readonly config: RackConfig,
    private readonly log: Logger,
  ) {}

  async start(): Promise<Ports> {
    const { config, log } = this;
    this.stopping = false;
    // What a build in flight left in the scratch space when rackd stopped is of no use now (a
    // --no-cache build's cache is a mount there under the disk limit).
    await unmountUnder(paths.tmp(config));
    await unmountUnder(paths.cache(config));
    await rm(paths.tmp(config), { recursive: true, force: true });
    for (const dir of [config.home, paths.repos(config), paths.cache(config), paths.logs(config), paths.tmp(config)]) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    }
    const build = await rackBuildOf(config.installDir);
    const store = new Store(paths.db(config), join(paths.logs(config), 'builds'), undefined, log.child({ mod: 'store' }));
    // First of all: the data brought to the shape this rack reads before anything reads it, or a
    // store newer than this rack refused before anything else is touched.
    await store.start((schema) => migrateUp(schema, MIGRATIONS, { ...build, installDir: config.installDir }, log.child({ mod: 'versions' })));
    this.stops.push(() => store.stop());
    const swarm = config.runtime === 'swarm' ? { dir: paths.registry(config), port: config.registryPort, installDir: config.installDir, log: log.child({ mod: 'registry' }) } : undefined;
    const disk = config.diskLimit === undefined ? undefined : new DiskLimit(paths.tmp(config), config.diskLimit);
    const runtime = new DockerRuntime(await instanceId(config), config.appSubnets, swarm, disk);
    await runtime.ping();
    await runtime.startSwarm();
    if (disk) await runtime.checkDiskLimit();
    else log.warn('RACK_DISK_LIMIT=off: app containers and builds may fill the host\'s disk');
    if (config.hostGuard) await installHostGuard();
    else log.warn('RACK_HOST_GUARD=off: app containers can reach every port this host listens on');
    await ensureStackImage(runtime, config.installDir, log);
    runtime.registry?.warm(STACK_RUN_IMAGE);

    // A build cut short by a crash: nothing will finish it or read its container.
    for (const b of await store.failInterruptedBuilds()) log.warn({ app: b.app, build: b.id }, 'build interrupted by a stop: marked failed');
    // Their containers go in the supervisor's adoption, with every other leftover found by label.
    if (config.adminKeysFile) await registerAdminKeys(config.adminKeysFile, store, log);

    // Opened as it is: what apps wrote before this start stays readable (each app's folder is read when first used).
    const logStore = new LogStore({ dir: paths.appLogs(config), keep: config.logKeep, log: log.child({ mod: 'logs' }) });
    logStore.start();
    this.stops.push(() => logStore.stop());
    const logs = new LogHub(logStore);
    const metricsLog = log.child({ mod: 'metrics' });
    const metrics = new MetricsRecorder(store.metrics, async () => (await store.listApps()).map((a) => a.name), metricsLog);
    await metrics.start();
    this.stops.push(() => metrics.stop());
    // The router is its own process with a persisted table: it keeps serving while rackd restarts.
    const router = new RouterClient({
      ...routerSettings(config),
      logger: log.child({ mod: 'router' }),
      onAccess: (e) =>
        logs.push({
          time: new Date().toISOString(),
          app: e.app,
          source: 'rack[router]',
          type: 'router',
          text: `method=${e.method} path=${JSON.stringify(e.path.slice(0, 200))} host=${e.host} status=${e.status} ms=${e.ms} ip=${e.ip}${e.protocol === undefined ? '' : ` protocol=${e.protocol}`}`,
        }),
      onSummary: (bucket) => void metrics.addSummary(bucket).catch((err: unknown) => metricsLog.error({ err }, 'metrics: a router summary was not stored')),
    });
    // The router sends an app's per-request lines only while someone follows its logs, a drain
    // wants them, or the app keeps them (logs:router on).
    logs.changes.on('wanted', () => {
      const apps = logs.wantedApps();
      metricsLog.info({ apps }, 'router: the apps whose access lines are wanted');
      router.setAccessApps(apps);
    });
    for (const app of await store.listApps()) if (app.keepRouterLines) logs.keepRouterLines(app.name, true);
    // Private before the router first reads it: it holds private keys.
    await mkdir(paths.certs(config), { recursive: true, mode: 0o700 });
    const http = await router.start();
    this.stops.push(() => router.stop());
    const https = (await router.ping()).httpsPort;
    // rack's own host goes to rackd's listener; while rackd is down the router answers it with a 503.
    // With its own certificate (RACK_CONSOLE_ACME), tokens never travel in the clear: plain requests are redirected.
    await router.setApp(CONTROL_PLANE_APP, [config.consoleHost], [{ socketPath: paths.apiSocket(config) }], { redirect: config.consoleAcme, hsts: false });
    const certs = new Certificates(config, store, router, logs, log.child({ mod: 'certs' }), paths.certs(config));
    await certs.start();

    const supervisor = new Supervisor({ ...config, httpPort: http }, store, runtime, router, logs, log.child({ mod: 'supervisor' }), this.lock);
    supervisor.start();
    this.stops.push(async () => supervisor.stop());

    const sampler = new ProcessSampler({ list: () => runtime.listProcesses(), usage: (id) => cgroupUsage(id), record: (points) => metrics.addSamples(points), logger: metricsLog });
    sampler.start();
    this.stops.push(() => sampler.stop());

    const builder = new Builder(config, store, runtime, log.child({ mod: 'build' }));
    const retention = new ImageRetention(store, runtime, config.keepReleases, log.child({ mod: 'retention' }));
    const pipeline = new Pipeline(store, builder, supervisor, runtime, retention, this.lock, this.pushLock, log.child({ mod: 'deploy' }));
    const processes = new ProcessControl(store, supervisor, this.lock);
    // Add-ons first: adoption removes the networks of apps that are gone, which an add-on may still
    // be on. They read each app's attachments, so interrupted releases are settled before.
    const addons = new Addons(store, runtime, pipeline, new AddonImages(runtime, config.installDir, log.child({ mod: 'addons' })), log.child({ mod: 'addons' }));
    await supervisor.failInterruptedReleases();
    await addons.reconcile();
    await supervisor.adopt();
    for (const held of domainsAgainstRule({ domain: config.domain, consoleHost: config.consoleHost, apps: await store.listApps() })) {
      log.warn({ app: held.app, host: held.host, reason: held.reason }, 'a domain added before domains:add refused such hosts still serves; remove it');
    }
    const backups = new AddonBackups(store, runtime, addons, { dir: config.backupDir, intervalMs: config.backupIntervalMs, keep: config.backupKeep, deadlineMs: config.backupDeadlineMs }, log.child({ mod: 'addons' }));
    backups.start();
    // Stopped in reverse: no new scheduled backup, then the add-on work under way finishes.
    this.stops.push(() => addons.lock.idle());
    this.stops.push(async () => backups.stop());
    this.stops.push(() => this.withinGrace(this.lock.idle()));
    this.stops.push(() => this.withinGrace(this.pushLock.idle()));

    // Pushes a killed rackd left between rollout and ref update: the branch and what serves agree again.
    const pushCheck = new PushCheck(store, pipeline, (app) => repoDir(paths.repos(config), app), log.child({ mod: 'git' }));
    await pushCheck.recover();
    // No receive-pack runs yet: whatever is in quarantine was left by pushes a killed rackd cut off.
    await sweepQuarantines(paths.repos(config), log);

    const audit = new AuditLog(store, log.child({ mod: 'audit' }));
    const issuer = new AcmeIssuer({ directoryUrl: config.acmeDirectory, email: config.acmeEmail, dir: paths.acme(config) });
    const autoCerts = new AutoCertificates(config, store, certs, issuer, router, log.child({ mod: 'certs' }));
    autoCerts.start();
    this.stops.push(() => autoCerts.stop());
    // Drains and webhooks hear of events before anything that makes them starts; stopped after them.
    const drains = new Drains(store, logs, config.fetchAllow, log.child({ mod: 'drains' }));
    await drains.start();
    this.stops.push(() => drains.stop());
    const untell = tellEventsInLogs(appEvents, logs);
    this.stops.push(async () => untell());
    const webhooks = new AppWebhooks(store, appEvents, config.fetchAllow, log.child({ mod: 'webhooks' }));
    webhooks.start();
    this.stops.push(() => webhooks.stop());
    // After adoption, which removed any scheduled run a stopped rackd left; stopped before the store.
    const cron = new ScheduledJobs(store, { runtime, logs, audit, maxProcesses: config.maxProcesses, timeoutMs: config.cronTimeoutMs }, log.child({ mod: 'cron' }));
    await cron.start();
    this.stops.push(() => cron.stop());
    // Renames a killed rackd left half done: files, images and processes follow the store's names.
    const renames = new AppRename({ config, store, runtime, supervisor, processes, pushLock: this.pushLock, lock: this.lock, logs, drains, addons, cron, log: log.child({ mod: 'rename' }) });
    await renames.repair(textOutput((line) => log.info({ mod: 'rename' }, line)));
    const sessions = new PushSessions();
    const control = new ControlServer(paths.controlSocket(config), log.child({ mod: 'control' }));
    control.handle('pre-receive', preReceiveHandler(sessions, pipeline, store, log.child({ mod: 'git' })));
    await control.start();
    this.stops.push(() => control.stop());

    // One receive core for pushes over ssh and over HTTP.
    const receiver = new PushReceiver({
      reposRoot: paths.repos(config),
      hooksDir: HOOKS_DIR(config.installDir),
      controlSocket: paths.controlSocket(config),
      maxPushBytes: config.maxPushBytes,
      idleTimeoutMs: config.pushIdleTimeoutMs,
      store,
      hosts: { domain: config.domain, consoleHost: config.consoleHost },
      sessions,
      pushLock: this.pushLock,
      check: pushCheck,
      onAppCreated: (app) => supervisor.publish(app, []),
      audit,
      log: log.child({ mod: 'git' }),
    });
    this.receiver = receiver;
    const git = new GitService({ reposRoot: paths.repos(config), store, receiver });
    // One throttle for every way in: guesses over ssh and over HTTP count together.
    const throttle = new LoginThrottle(config.loginThrottle);
    const repoKeys = join(config.home, 'repo-keys');
    const workflowLog = log.child({ mod: 'workflows' });
    // What the add-on steps of a review app tell goes to the operator log: no user watches a webhook.
    const addonOutput = textOutput((line) => workflowLog.debug({ line }, 'review app add-on'));
    const statuses = new CommitStatuses(config.fetchAllow, workflowLog);
    const repoDeploys = new RepoDeploys({
      store,
      pipeline,
      pushLock: this.pushLock,
      check: pushCheck,
      reposRoot: paths.repos(config),
      fetch: async (app, repo, ref) => {
        const link = await store.repos.get(app);
        if (!link) throw new RackError('not_found', `${app} has no connected repository`);
        return fetchBranch(link, repo, { keysDir: repoKeys, hooksDir: HOOKS_DIR(config.installDir), fetchAllow: config.fetchAllow }, ref);
      },
      reviewApps: new ReviewApps({
        store,
        releases: pipeline,
        addons: {
          create: async (app, addon, by) => {
            await addons.create({ kind: addon.kind, name: undefined, app, alias: addon.alias, createdBy: by }, addonOutput);
          },
          ownedBy: async (app) => (await addons.list()).filter((a) => a.createdFor === app).map((a) => a.name),
          // No final backup: a review app's data is made for the pull request and goes with it.
          destroy: (name) => addons.destroy(name, async () => undefined, addonOutput),
        },
        postdeploy: (app, command) => runPostdeploy(runtime, logs, store, app, command),
        publish: (app) => supervisor.publish(app, []),
        hosts: { domain: config.domain, consoleHost: config.consoleHost },
        log: workflowLog,
      }),
      // A closed pull request's review app goes as `apps:destroy` takes an app, recorded in the
      // audit log under the delivery that asked; the admin role is this one command's.
      destroyApp: async (name, caller) => {
        await invoke(services, caller, { command: findCommand('apps:destroy')!, app: '', args: [name], flags: { confirm: name } }, {
          stdout: () => undefined,
          readInput: async () => '',
          closed: new Promise<void>(() => undefined),
        });
      },
      statuses,
      appUrl: (app) => supervisor.url(app),
      audit,
      log: workflowLog,
    });
    this.repoDeploys = repoDeploys;
    this.stops.push(() => this.withinGrace(statuses.idle()));
    this.stops.push(() => this.withinGrace(repoDeploys.idle()));
    const services: Services = {
      config: { ...config, httpPort: http },
      store,
      supervisor,
      router,
      pipeline,
      processes,
      promotion: new Promotion(store, pipeline, this.lock, runtime, log.child({ mod: 'pipelines' })),
      lock: this.lock,
      renames,
      logs,
      metrics,
      runtime,
      audit,
      certs,
      autoCerts,
      addons,
      backups,
      repos: new RepoLinks(store, { ...config, httpPort: http, httpsPort: https === 0 ? undefined : https }, repoKeys),
      drains,
      webhooks,
      cron,
      version: build.version,
      rack: {
        build,
        startedAt: STARTED_AT,
        updates: new RackUpdates({ home: config.home, installDir: config.installDir, build, store, audit, switcher: (req) => this.switchTo(req) }),
      },
      stopping: () => this.stopping,
    };
    const gitHttp = new GitHttp({ reposRoot: paths.repos(config), tmpDir: paths.tmp(config), store, receiver, log: log.child({ mod: 'git' }) });
    const auth = new TokenAuth(store, throttle, log.child({ mod: 'http' }));
    const webConsole = new Console(services, auth);
    await webConsole.start();
    this.stops.push(() => webConsole.stop());
    const httpServer = new HttpServer({
      socketPath: paths.apiSocket(config),
      auth,
      api: apiHandler(services),
      git: gitHttp.handle,
      public: publicPaths(services),
      hooks: new WebhookReceiver(store, repoDeploys, () => this.stopping, log.child({ mod: 'workflows' })).handle,
      console: { owns: Console.owns, handle: webConsole.handle },
      logger: log.child({ mod: 'http' }),
    });
    await httpServer.start();
    this.stops.push(() => httpServer.stop());

    const ssh = new SshServer({
      hostKey: await loadOrCreateHostKey(paths.hostKey(config)),
      keys: () => store.listKeys(),
      exec: (req) => this.exec(req, git, services),
      logger: log.child({ mod: 'ssh' }),
      loginGraceMs: config.sshLoginGraceMs,
      maxStartups: config.sshMaxStartups,
      perSourceMaxStartups: config.sshPerSourceMaxStartups,
      keepaliveMs: config.sshKeepaliveMs,
      throttle,
    });
    const sshPort = await ssh.start(config.sshPort, config.bind);
    this.stops.push(() => ssh.stop(this.keep));
    services.config.sshPort = sshPort;

    // Ready: the ledger names what runs (an install, or an update made by hand, is recorded now).
    const noted = await noteRunningRack(store.rackReleases, build, (await store.schema.version()) ?? FIRST_SCHEMA, STARTED_AT, config.installDir, this.switchFailure);
    this.switchFailure = undefined;
    if (noted) log.info({ release: `r${noted.id}`, version: noted.version, commit: noted.commit, from: noted.from }, 'rack release recorded');

    const ports = { ssh: sshPort, http, https };
    await writeFile(paths.ports(config), `${JSON.stringify(ports)}\n`);
    log.info({ ...ports, home: config.home }, 'rackd ready');
    return ports;
  }

  /**
   * First the work under way: new pushes and commands are refused (` !     rack is restarting`),
   * pushes and rollouts get RACK_STOP_GRACE to finish (a push that went live reports it to git), then
   * the components stop in reverse order, ssh telling the sessions still open why they end.
   */
  async stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.receiver?.refuseNew();
      this.repoDeploys?.refuseNew();
      let timer: NodeJS.Timeout | undefined;
      this.graceOver = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.config.stopGraceMs)));
      timer?.unref();
      // Pushes first: a push takes the deploy lock inside its own, so rollouts are waited for after.
      const done = await this.withinGrace(
        (this.repoDeploys?.idle() ?? Promise.resolve())
          .then(() => this.pushLock.idle())
          .then(() => this.lock.idle())
          // A push is over for its client once its ssh session has its exit status: the push lock
          // is free a few steps before that, and the ssh server's stop would end the session first.
          .then(() => Promise.allSettled([...this.gitSessions]))
          // The exit status is sent in promise jobs chained on the session's end; all run before this.
          .then(() => new Promise((resolve) => setImmediate(resolve)))
          .then(() => true),
      );
      if (done !== true) this.log.warn({ graceMs: this.config.stopGraceMs }, 'pushes or rollouts still under way at the end of the stop grace; stopping anyway');
      clearTimeout(timer);
    }
    for (const stop of this.stops.reverse()) {
      try {
        await stop();
      } catch (err) {
        this.log.warn({ err: String(err) }, 'error while stopping');
      }
    }
    this.stops.length = 0;
  }

  /**
   * rack:update's switch: this rackd stops as on SIGTERM (work under way finishes, the apps and the
   * router run on), except the asking ssh channel; the launcher starts the rackd installed in
   * `dir`. When that one is ready, this process is done once its client has been told. When it is
   * not, this rackd starts again in the same process (after taking back any migration the other
   * one made), and the ledger says why.
   */
  async switchTo(req: SwitchRequest): Promise<SwitchAnswer> {
    const { config, log } = this;
    this.keep = req.keep;
    const schemaBefore = req.migrateDownTo;
    try {
      await this.stop();
    } finally {
      this.keep = undefined;
    }
    let answer: SwitchAnswer;
    try {
      if (schemaBefore !== undefined) await runMigrate(config.installDir, schemaBefore, log);
      answer = await askSwitch(req.dir);
    } catch (err) {
      answer = { type: 'switched', ok: false, error: RackError.from(err).message };
    }
    if (answer.ok) {
      this.switched = true;
      if (req.keep === undefined) this.handOver();
      return answer;
    }
    log.error({ dir: req.dir, error: answer.error }, 'the new rackd did not start; starting this one again');
    // A store the other rack migrated up is taken back down by that rack's own steps.
    await runMigrate(req.dir, latestSchema(MIGRATIONS), log).catch((err: unknown) => log.error({ err: String(err) }, 'could not take the store back down'));
    this.switchFailure = { step: 'start', error: `the new rackd ${answer.error}` };
    await this.start();
    return answer;
  }

  /** `work`, or undefined once the stop's grace is over. */
  private withinGrace<T>(work: Promise<T>): Promise<T | undefined> {
    return Promise.race([work, this.graceOver.then(() => undefined)]);
  }

  private async exec(req: ExecRequest, git: GitService, services: Services): Promise<number> {
    const { channel } = req;
    try {
      if (this.stopping) throw new RackError('restarting', 'rack is restarting; try again in a moment');
      const run = parseRunLine(req.command);
      if (run) return await runOneOff(services, req, run);
      const argv = tokenize(req.command);
      if (isGitCommand(argv)) {
        const serving = git.serve(req, argv);
        this.gitSessions.add(serving);
        try {
          return await serving;
        } finally {
          this.gitSessions.delete(serving);
        }
      }
      const closed = new Promise<void>((resolve) => channel.once('close', () => resolve()));
      const abort = new AbortController();
      void closed.then(() => abort.abort());
      try {
        await runCommand(services, req, argv, {
          stdout: (text) => channel.write(text),
          readInput: (max) => readChannel(channel, max),
          closed,
          session: { stdin: channel, stdout: channel, stderr: channel.stderr, pty: req.pty, abort: abort.signal },
        });
      } finally {
        // The session that switched rack to another rackd ends; then so does this process.
        if (this.switched) void Promise.race([closed, new Promise((r) => setTimeout(r, 3000))]).then(() => this.handOver());
      }
      return 0;
    } catch (err) {
      const error = RackError.from(err);
      if (error.code === 'internal') this.log.error({ err, command: req.command.slice(0, 200) }, 'command failed');
      channel.stderr.write(` !     ${error.message}\n`);
      return error.exitCode;
    }
  }
}

/** Reads what the client sends on stdin until it closes it; refuses more than `max` bytes. */
function readChannel(channel: ExecRequest['channel'], max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    channel.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) reject(new RackError('bad_argument', `input is over ${Math.round(max / 1024)} KiB`));
      else chunks.push(chunk);
    });
    channel.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    channel.once('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/** A random ID made on first start and kept in RACK_HOME; it labels everything this daemon runs. */
async function instanceId(config: RackConfig): Promise<string> {
  const file = join(config.home, 'instance-id');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const id = randomBytes(8).toString('hex');
    await writeFile(file, `${id}\n`, { flag: 'wx' });
    return id;
  }
}
