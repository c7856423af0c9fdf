import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import { parse as parseYaml } from 'yaml';
import { appEvents } from '../app-events.js';
import { paths, type RackConfig } from '../config.js';
import { archive, fileMode, showFile, type GitObjectEnv } from '../git/repo.js';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import { LABEL } from '../runtime/labels.js';
import type { DockerRuntime } from '../runtime/docker-runtime.js';
import type { Confinement } from '../runtime/isolation.js';
import type { BuildRecord, BuildSource } from '../store/records.js';
import type { Store } from '../store/store.js';
import { lineSplitter } from '../line-splitter.js';
import type { UserOutput } from '../user-output.js';
import { cronFromAppJson, readAppJson, type AppJson } from './app-json.js';
import { nothingToStart, singlePageApp } from './start-check.js';
import { BuildLog } from './build-log.js';
import { BuildSlots } from './build-slots.js';
import { checkAncestry, stepCheck } from './dockerfile-audit.js';
import { checkDockerfile } from './dockerfile-policy.js';
import { parseBuildpackList, resolveBuildpacks } from './buildpack-sources.js';
import { parseProcfile } from './procfile.js';
import { STACK_IMAGE, STACK_RUN_IMAGE } from './stack-image.js';

export interface BuildRequest {
  app: string;
  commit: string;
  repo: string;
  objects: GitObjectEnv;
  config: Record<string, string>;
  createdBy: string;
  /** Build with an empty cache (the app's cache is kept for later builds). */
  noCache?: boolean;
  /** Absent for a push; a tarball sent to the builds API otherwise. */
  source?: BuildSource;
}

type ProcessTypes = Record<string, string>;

/** The user's channel during a build, plus `output` for what the build itself prints (capped). */
interface BuildOutput extends UserOutput {
  output(line: string): void;
}
type BuildResult = Pick<BuildRecord, 'image' | 'builder' | 'buildpacks' | 'processTypes'>;

const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** Failures whose line the build runner already printed in the build output. */
const SHOWN = new WeakSet<Error>();
const shownAlready = (err: RackError): RackError => {
  SHOWN.add(err);
  return err;
};
const PROXY_VARS = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy'];

/**
 * What a build container may use. The runner runs as root inside the container (it installs the
 * launcher, buildpacks may use apt), so it keeps only the capabilities file ownership and apt's
 * privilege drop need; no-new-privileges stops setuid binaries from gaining more. CPU weight is
 * half an app's, so running apps stay responsive while something builds.
 */
const BUILD_CAPABILITIES = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'SETUID', 'SETGID'];
const BUILD_CPU_SHARES = 512;

/**
 * Turns a commit into an image `rack/APP:bN-INSTANCE`: the source goes into a build container made from the
 * stack image, the classic buildpacks compile it in place, and the container is committed. The
 * build container is removed in every case.
 */
export class Builder {
  /** One build per app, and shared slots: builds are CPU-heavy and the machine runs apps too. */
  private readonly slots: BuildSlots;

  constructor(
    private readonly config: RackConfig,
    private readonly store: Store,
    private readonly runtime: DockerRuntime,
    private readonly log: Logger,
  ) {
    this.slots = new BuildSlots(config.buildConcurrency, config.buildLongAfterMs);
  }

  async build(req: BuildRequest, out: UserOutput): Promise<BuildRecord> {
    // Checked before a build is made: a bad `cron` schedule refuses the push with its one line
    // (nothing built, nothing recorded), without waiting for a compile.
    const appJson = await showFile(req.repo, req.commit, 'app.json', req.objects);
    const cron = appJson === undefined ? undefined : cronFromAppJson(appJson);
    const build = await this.store.createBuild(req.app, { commit: req.commit, createdBy: req.createdBy, ...(req.source ? { source: req.source } : {}) });
    const started = Date.now();
    const log = new BuildLog();
    // rack's own lines are always kept and shown; what the build prints goes through `output`.
    const say: BuildOutput = {
      header: (t) => (log.note(`-----> ${t}`), out.header(t)),
      detail: (t) => (log.note(`       ${t}`), out.detail(t)),
      error: (t) => (log.note(` !     ${t}`), out.error(t)),
      raw: (t) => (log.note(t), out.raw(t)),
      output: (line) => {
        if (log.output(line, (marker) => out.raw(marker))) out.raw(line);
      },
      ...(out.flow ? { flow: out.flow } : {}),
    };
    const finish = async (fields: Partial<BuildRecord>) => {
      Object.assign(build, fields, { finishedAt: new Date().toISOString(), durationMs: Date.now() - started });
      await this.store.finishBuild(build, log.pages());
    };
    const from = req.source ? `a source tarball${req.source.version === undefined ? '' : ` (${req.source.version})`}` : req.commit.slice(0, 7);
    say.header(`Building ${req.app} b${build.id} from ${from}`);
    try {
      if (this.slots.busy) say.detail('Waiting for a build slot');
      const result = await this.slots.run(req.app, () => this.compile(build, req, say));
      const fromAppJson = appJson === undefined ? {} : this.applyAppJson(readAppJson(appJson), result, say);
      await finish({ status: 'succeeded', ...result, ...fromAppJson, ...(cron ? { cron } : {}) });
      this.log.info({ app: req.app, build: build.id, ms: build.durationMs }, 'build succeeded');
      appEvents.emit({ kind: 'build', app: req.app, action: 'succeeded', actor: req.createdBy, data: buildData(build) });
      return build;
    } catch (err) {
      const error = RackError.from(err);
      if (!SHOWN.has(error)) say.error(error.message);
      await finish({ status: 'failed', error: error.message });
      // The cause stays with the operator: a fetch's real failure is kept from the user (buildpack-sources.ts).
      const cause = error.cause instanceof Error ? error.cause.message.slice(0, 500) : undefined;
      this.log.warn({ app: req.app, build: build.id, err: error.message, ...(cause ? { cause } : {}) }, 'build failed');
      appEvents.emit({ kind: 'build', app: req.app, action: 'failed', actor: req.createdBy, data: buildData(build) });
      throw new RackError('build_failed', `build b${build.id} failed: ${error.message}`, { cause: err });
    }
  }

  /** What app.json adds to a finished build; its warnings and what it changed are said to the user. */
  private applyAppJson(appJson: AppJson, result: BuildResult, say: BuildOutput): Pick<BuildRecord, 'healthcheck' | 'appFormation'> {
    for (const warning of appJson.warnings) say.error(warning);
    if (appJson.predeploy !== undefined) {
      if (Object.hasOwn(result.processTypes, 'release')) {
        say.error('app.json scripts.dokku.predeploy is not run: the Procfile has a release command, which runs instead');
      } else {
        result.processTypes = { ...result.processTypes, release: appJson.predeploy };
        say.detail('app.json scripts.dokku.predeploy runs as the release phase');
      }
    }
    const formation = appJson.formation;
    if (formation) {
      const unknown = Object.keys(formation).filter((t) => !Object.hasOwn(result.processTypes, t) || t === 'release');
      for (const t of unknown) say.error(`app.json formation.${t}: the app has no such process type; left out`);
      const known = Object.entries(formation).filter(([t]) => !unknown.includes(t));
      if (known.length > 0) say.detail(`app.json formation -> ${known.map(([t, n]) => `${t}=${n}`).join(' ')}`);
      return { ...(appJson.healthcheck ? { healthcheck: appJson.healthcheck } : {}), ...(known.length > 0 ? { appFormation: Object.fromEntries(known) } : {}) };
    }
    return appJson.healthcheck ? { healthcheck: appJson.healthcheck } : {};
  }

  private async compile(build: BuildRecord, req: BuildRequest, say: BuildOutput): Promise<BuildResult> {
    const procfileText = await showFile(req.repo, req.commit, 'Procfile', req.objects);
    const procfile = procfileText === undefined ? {} : parseProcfile(procfileText);
    // Detection between builders: a Dockerfile means Docker builds it; anything else, buildpacks.
    const dockerfile = await showFile(req.repo, req.commit, 'Dockerfile', req.objects);
    if (dockerfile !== undefined) return this.dockerfileBuild(build, req, dockerfile, procfile, say);
    return this.buildpackBuild(build, req, procfile, say);
  }

  private async dockerfileBuild(
    build: BuildRecord,
    req: BuildRequest,
    dockerfile: string,
    procfile: ProcessTypes,
    say: BuildOutput,
  ): Promise<BuildResult> {
    say.header('Dockerfile app detected');
    // Docker would follow a symlinked Dockerfile to text this check never saw.
    const mode = await fileMode(req.repo, req.commit, 'Dockerfile', req.objects);
    if (mode !== '100644' && mode !== '100755') throw new RackError('build_failed', 'the Dockerfile must be a regular file (not a symlink)');
    const parsed = checkDockerfile(dockerfile, this.config.dockerBases);
    const { repo, tag: buildTag } = this.runtime.imageName(req.app, build.id);
    const tag = `${repo}:${buildTag}`;
    const source = archive(req.repo, req.commit, '', req.objects);
    await this.runtime.buildImage({
      context: source.tar,
      tag,
      labels: { [LABEL.app]: req.app, [LABEL.build]: String(build.id) },
      buildArgs: proxyEnv(),
      noCache: req.noCache === true,
      network: await this.runtime.networks.ensure(req.app),
      onLine: (line) => say.output(`       ${line}`),
      timeoutMs: this.config.buildTimeoutMs,
      confine: this.confinement(),
      checkStep: stepCheck(parsed),
    });
    await source.done;
    await this.checkBase(req.app, tag);
    // Without a Procfile the image's own CMD is the web process.
    const processTypes = Object.keys(procfile).length > 0 ? procfile : { web: '' };
    say.header(`Built image ${tag}`);
    return { image: tag, builder: 'dockerfile', buildpacks: [], processTypes };
  }

  private async buildpackBuild(build: BuildRecord, req: BuildRequest, procfile: ProcessTypes, say: BuildOutput): Promise<BuildResult> {
    const appCache = join(paths.cache(this.config), req.app);
    // --no-cache: this build gets an empty cache of its own; the app's cache stays for the next one.
    const cacheDir = req.noCache ? await mkdtemp(join(paths.tmp(this.config), `nocache-${req.app}-`)) : appCache;
    await mkdir(cacheDir, { recursive: true });
    let wanted = await this.requestedBuildpacks(req, say);
    const packageJson = await showFile(req.repo, req.commit, 'package.json', req.objects);
    const cannotStart = nothingToStart({
      packageJson,
      hasServerJs: (await fileMode(req.repo, req.commit, 'server.js', req.objects)) !== undefined,
      hasProcfileTypes: Object.keys(procfile).length > 0,
      buildpacks: wanted,
    });
    // A single-page app left as its scaffolder made it: its build is the site to serve.
    const bundler = cannotStart !== undefined && wanted.length === 0 ? singlePageApp(packageJson) : undefined;
    if (cannotStart !== undefined && bundler === undefined) throw new RackError('build_failed', cannotStart);
    if (bundler !== undefined) {
      say.header(`Single-page app (${bundler}, no start script): nodejs builds it, static serves what it built`);
      say.detail('(a .buildpacks file with the lines nodejs and static says the same; add a static.json for routes and headers)');
      wanted = ['nodejs', 'static'];
    }
    const custom = await resolveBuildpacks(wanted, {
      builtInDir: join(this.config.installDir, 'buildpacks'),
      localRoot: join(this.config.home, 'buildpacks'),
      workDir: paths.tmp(this.config),
      fetchAllow: this.config.fetchAllow,
    });
    // The build writes to /cache too, and the app's cache outlives it: under the disk limit as well.
    let unmountCache: () => Promise<void>;
    try {
      unmountCache = await this.runtime.mountBuildCache(cacheDir, cacheDir === appCache);
    } catch (err) {
      await custom.cleanup();
      throw err;
    }
    try {
      const buildEnv = this.buildEnv();
      // The static buildpack takes a Node.js app without static.json, and serves only what it built.
      if (bundler !== undefined) buildEnv['RACK_SPA_BUILD'] = '1';
      if (custom.list !== '') {
        buildEnv['RACK_BUILDPACKS'] = custom.list;
        buildEnv['RACK_BUILDPACK_LABELS'] = custom.labels;
      }
      const source = archive(req.repo, req.commit, 'app/', req.objects);
      const lines = lineSplitter((line) => say.output(line));
      const run = await this.runtime.runTask({
        app: req.app,
        role: 'build',
        id: build.id,
        image: STACK_IMAGE,
        cmd: ['/rack/stack/build'],
        env: {},
        binds: [...this.binds(cacheDir), ...custom.binds],
        network: await this.runtime.networks.ensure(req.app),
        inputs: [
          { path: '/', tar: source.tar, ready: source.done },
          { path: '/', tar: inputsTar(req.config, buildEnv) },
        ],
        onOutput: (chunk) => lines.push(chunk),
        ...(say.flow ? { flow: say.flow } : {}),
        timeoutMs: this.config.buildTimeoutMs,
        confine: this.confinement(),
      });
      lines.end();
      let made = false;
      try {
        // What the runner left in /rack-out (its contract in stack/build), read in one call.
        const out = await this.runtime.readFiles(run.container, '/rack-out');
        if (run.exitCode !== 0) {
          // The runner's own reason when it gave one (no buildpack detected, compile failed...).
          const reason = out.get('error')?.toString().split('\n')[0]?.trim();
          if (!reason) throw new RackError('build_failed', `a buildpack failed (exit status ${run.exitCode})`);
          throw shownAlready(new RackError('build_failed', reason));
        }
        const releaseYaml = out.get('release.yml')?.toString() ?? '';
        const buildpacks = (out.get('buildpacks')?.toString() ?? '')
          .split('\n')
          .filter((l) => l !== '');
        const processTypes = { ...defaultProcessTypes(releaseYaml), ...procfile };
        if (Object.keys(processTypes).length === 0) {
          throw new RackError('build_failed', 'no process types: add a Procfile (e.g. "web: node server.js")');
        }
        say.header(`Discovering process types`);
        if (Object.keys(procfile).length > 0) say.detail(`Procfile declares types -> ${Object.keys(procfile).join(', ')}`);
        const defaults = Object.keys(processTypes).filter((t) => !(t in procfile));
        if (defaults.length > 0) say.detail(`Default types for buildpack -> ${defaults.join(', ')}`);
        // The slug (/app) and the launcher go onto the run image; the build image's tools do not.
        // Dependencies the runner set aside go first, as a layer reused while they are unchanged.
        // The launcher is part of the layer's key (stack/build), so it goes in with the layer.
        const layer = /^node_modules ([0-9a-f]{64})$/.exec(out.get('layer')?.toString().trim() ?? '');
        const launcher = { path: '/usr/local/bin/rack-launch', into: '/usr/local/bin' };
        const image = await this.runtime.commitOnto(
          run.container,
          STACK_RUN_IMAGE,
          layer ? ['/app'] : ['/app', launcher.path],
          this.runtime.imageName(req.app, build.id),
          { [LABEL.app]: req.app, [LABEL.build]: String(build.id) },
          layer ? { copies: [{ path: '/rack-layers/node_modules', into: '/app' }, launcher], ref: this.runtime.layerImageName(req.app, layer[1]!) } : undefined,
        );
        say.header(`Built image ${image}`);
        made = true;
        return { image, builder: 'buildpacks', buildpacks, processTypes };
      } finally {
        // Removing a container with a big /app takes a few hundred ms; a finished build does not
        // wait for it (a crash meanwhile leaves it to the clean-up at the next start).
        const removed = this.runtime.removeContainer(run.container);
        if (made) removed.catch((err: unknown) => this.log.warn({ container: run.container, err: String(err) }, 'could not remove a build container'));
        else await removed;
      }
    } finally {
      await unmountCache();
      await custom.cleanup();
      if (cacheDir !== appCache) await rm(cacheDir, { recursive: true, force: true });
    }
  }

  /**
   * `.buildpacks` in the repo wins (as on Dokku), then the BUILDPACK_URL config var; else
   * detection. The build output says which one chose, and when BUILDPACK_URL was passed over.
   */
  private async requestedBuildpacks(req: BuildRequest, say: BuildOutput): Promise<string[]> {
    const file = await showFile(req.repo, req.commit, '.buildpacks', req.objects);
    const fromConfig = parseBuildpackList(req.config['BUILDPACK_URL'] ?? '');
    if (file !== undefined) {
      say.header('Buildpacks from .buildpacks');
      if (fromConfig.length > 0) say.detail('(the BUILDPACK_URL config var is set too; .buildpacks wins)');
      return parseBuildpackList(file);
    }
    if (fromConfig.length > 0) say.header('Buildpacks from the BUILDPACK_URL config var');
    return fromConfig;
  }

  /** What the engine built on, from its own record (dockerfile-audit.ts); a foreign base loses the image. */
  private async checkBase(app: string, tag: string): Promise<void> {
    const allowed = new Set<string>();
    for (const ref of [STACK_IMAGE, STACK_RUN_IMAGE, ...this.config.dockerBases]) {
      for (const id of await this.runtime.imageIds(ref)) allowed.add(id);
    }
    try {
      checkAncestry(await this.runtime.imageAncestry(tag), allowed, app);
    } catch (err) {
      await this.runtime.removeImage(tag, true);
      throw err;
    }
  }

  private confinement(): Confinement {
    return { memoryBytes: this.config.buildMemory, pids: this.config.buildPids, cpuShares: BUILD_CPU_SHARES, capabilities: BUILD_CAPABILITIES };
  }

  /** Operator settings the build needs but the app image must not keep. */
  private buildEnv(): Record<string, string> {
    const env = proxyEnv();
    if (existsSync(CA_BUNDLE)) {
      env['SSL_CERT_FILE'] = CA_BUNDLE;
      env['NODE_EXTRA_CA_CERTS'] = CA_BUNDLE;
    }
    return env;
  }

  private binds(cacheDir: string): string[] {
    const binds = [
      `${join(this.config.installDir, 'stack')}:/rack/stack:ro`,
      `${join(this.config.installDir, 'buildpacks')}:/rack/buildpacks:ro`,
      `${cacheDir}:/cache`,
    ];
    // Intercepting proxies re-sign TLS; the host's bundle is what trusts them.
    if (existsSync(CA_BUNDLE)) binds.push(`${CA_BUNDLE}:${CA_BUNDLE}:ro`);
    return binds;
  }
}

function proxyEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of PROXY_VARS) {
    const value = process.env[name];
    if (value) env[name] = value;
  }
  return env;
}

/**
 * `/rack-env`, the ENV_DIR of the buildpack contract (one file per config var, holding its exact
 * value), and `/rack-build/env`, build-only settings the runner sources and deletes.
 */
function inputsTar(config: Record<string, string>, buildEnv: Record<string, string>): Readable {
  const tar = pack();
  tar.entry({ name: 'rack-env/', type: 'directory', mode: 0o755 });
  for (const [key, value] of Object.entries(config)) tar.entry({ name: `rack-env/${key}`, mode: 0o644 }, value);
  const quote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  const lines = Object.entries(buildEnv).map(([k, v]) => `${k}=${quote(v)}\n`);
  tar.entry({ name: 'rack-build/', type: 'directory', mode: 0o700 });
  tar.entry({ name: 'rack-build/env', mode: 0o600 }, lines.join(''));
  tar.finalize();
  return tar as unknown as Readable;
}

function defaultProcessTypes(yamlText: string): Record<string, string> {
  if (yamlText.trim() === '') return {};
  const doc = parseYaml(yamlText) as { default_process_types?: Record<string, unknown> } | null;
  const types: Record<string, string> = {};
  for (const [type, cmd] of Object.entries(doc?.default_process_types ?? {})) {
    if (typeof cmd === 'string') types[type] = cmd;
  }
  return types;
}

/** What a build event tells of it (never its log: that stays behind builds:logs). */
function buildData(b: BuildRecord): Record<string, unknown> {
  return { build: b.id, commit: b.commit, status: b.status, builder: b.builder ?? null, durationMs: b.durationMs, error: b.error ?? null, image: b.image };
}
