import { spawn, type ChildProcess } from 'node:child_process';
import { access } from 'node:fs/promises';
import type { Logger } from '../log.js';
import { probeRouter } from '../router/router-probe.js';
import { spawnRouterProcess, type SpawnOptions } from '../router/router-spawner.js';
import { chooseInstall, rackdScript, setCurrent } from './current-version.js';
import { isToLauncher, LAUNCHED_ENV, type SwitchAnswer } from './launcher-protocol.js';

/** How long a new rackd may take to be ready (store, router, adoption of every app) before a switch to it fails. */
const READY_TIMEOUT_MS = 180_000;
/** A rackd that ran this long before it died is restarted at once; quicker deaths back off. */
const HEALTHY_RUN_MS = 60_000;
const MAX_BACKOFF_MS = 30_000;
/** A router that does not answer a ping by then is stuck, not busy. */
const PROBE_TIMEOUT_MS = 3_000;
/** The end of a rackd's stderr kept to say why it did not start. */
const TAIL_BYTES = 2000;

export interface LauncherOptions {
  home: string;
  /** The launcher's own install: started when no rack:update has pointed `current` elsewhere. */
  installDir: string;
  /** How to bring the router back when it is found dead (a port of 0: the one in ports.json). */
  router: SpawnOptions;
  log: Logger;
}

interface Rackd {
  child: ChildProcess;
  dir: string;
  startedAt: number;
  /** The end of what it wrote on stderr (also passed on to ours). */
  tail: string;
  ready: boolean;
}

/**
 * `bin/rackd`: the one process a service manager keeps running. It starts the rackd of the current
 * install and stays its parent, so a rack:update can replace rackd by another version's without
 * the service manager noticing: the old rackd asks for a switch once it has let go of the store and
 * its ports, the launcher starts the new one and tells the old how it went (on a failure the old
 * one starts again itself). A rackd that dies is started again, with backoff; and before that, a
 * router found dead with it is brought back from its persisted table, so apps answer while rackd
 * is still coming up.
 */
export class Launcher {
  #main: Rackd | undefined;
  #stopping = false;
  /** The signal a stop passes on to rackd, kept for a rackd that becomes main after it. */
  #stopSignal: NodeJS.Signals = 'SIGTERM';
  #failures = 0;
  #done!: (code: number) => void;

  constructor(private readonly opts: LauncherOptions) {}

  /** Runs until a stop signal ends the rackd it runs; resolves to the exit status to leave with. */
  async run(): Promise<number> {
    const finished = new Promise<number>((resolve) => (this.#done = resolve));
    process.on('SIGTERM', () => this.#stop('SIGTERM'));
    process.on('SIGINT', () => this.#stop('SIGINT'));
    process.on('SIGHUP', () => this.opts.log.info('launcher: SIGHUP ignored'));
    // Started after a crash or a reboot: the apps answer again before rackd has even begun.
    if (await exists(this.opts.router.statePath)) await this.#reviveRouter();
    await this.#startMain();
    return finished;
  }

  #stop(signal: NodeJS.Signals): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#stopSignal = signal;
    this.opts.log.info({ signal }, 'launcher: stopping rackd');
    const main = this.#main;
    if (!main || main.child.exitCode !== null) return this.#done(0);
    main.child.kill(signal);
  }

  async #startMain(): Promise<void> {
    const { dir, why } = await chooseInstall(this.opts.home, this.opts.installDir);
    this.opts.log.info({ dir, why }, 'launcher: starting rackd');
    this.#main = this.#spawn(dir);
  }

  #spawn(dir: string): Rackd {
    const child = spawn(process.execPath, [rackdScript(dir)], {
      env: { ...process.env, [LAUNCHED_ENV]: '1' },
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    const rackd: Rackd = { child, dir, startedAt: Date.now(), tail: '', ready: false };
    child.stderr!.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk);
      rackd.tail = (rackd.tail + chunk.toString('utf8')).slice(-TAIL_BYTES);
    });
    child.on('error', (err) => this.opts.log.error({ err: err.message, dir }, 'launcher: rackd could not be started'));
    child.on('message', (msg: unknown) => {
      if (!isToLauncher(msg)) return;
      if (msg.type === 'ready') {
        rackd.ready = true;
        this.opts.log.info({ pid: msg.pid, dir, startMs: msg.startMs }, 'launcher: rackd ready');
      } else if (rackd === this.#main) {
        void this.#switch(rackd, msg.dir);
      }
    });
    child.on('exit', (code, signal) => void this.#exited(rackd, code, signal));
    return rackd;
  }

  async #exited(rackd: Rackd, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (rackd !== this.#main) return; // a rackd replaced by a switch, or a candidate that failed
    if (this.#stopping) return this.#done(code ?? 1);
    const ranMs = Date.now() - rackd.startedAt;
    this.#failures = ranMs > HEALTHY_RUN_MS ? 0 : this.#failures + 1;
    const delayMs = this.#failures === 0 ? 0 : Math.min(MAX_BACKOFF_MS, 500 * 2 ** (this.#failures - 1));
    this.opts.log.error({ code, signal, ranMs, restartInMs: delayMs }, 'launcher: rackd exited; starting it again');
    await this.#reviveRouter();
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    if (!this.#stopping) await this.#startMain();
  }

  /**
   * Starts the rackd installed in `dir` in place of `old`, which has let go of everything; answers
   * `old` with the outcome. On success `current` points at `dir`, so a restart starts it again.
   */
  async #switch(old: Rackd, dir: string): Promise<void> {
    this.opts.log.info({ from: old.dir, to: dir }, 'launcher: switching rackd');
    const next = this.#spawn(dir);
    const outcome = await new Promise<SwitchAnswer>((resolve) => {
      const timer = setTimeout(() => resolve({ type: 'switched', ok: false, error: `not ready within ${READY_TIMEOUT_MS / 1000} s` }), READY_TIMEOUT_MS);
      const onMessage = (msg: unknown) => {
        if (isToLauncher(msg) && msg.type === 'ready') {
          clearTimeout(timer);
          next.child.off('exit', onExit);
          resolve({ type: 'switched', ok: true, pid: msg.pid, startMs: msg.startMs });
        }
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        clearTimeout(timer);
        next.child.off('message', onMessage);
        const why = lastLine(next.tail);
        resolve({ type: 'switched', ok: false, error: `exited (${signal ?? `status ${code}`}) before it was ready${why ? `: ${why}` : ''}` });
      };
      next.child.on('message', onMessage);
      next.child.once('exit', onExit);
    });
    if (outcome.ok) {
      await setCurrent(this.opts.home, dir);
      this.#main = next;
      this.opts.log.info({ pid: outcome.pid, dir }, 'launcher: switched');
      // A stop that came during the switch went to the old rackd: the one that serves now stops too.
      if (this.#stopping) next.child.kill(this.#stopSignal);
    } else {
      if (next.child.exitCode === null) next.child.kill('SIGKILL');
      this.opts.log.error({ dir, error: outcome.error }, 'launcher: the new rackd did not start; the old one starts again');
    }
    if (old.child.connected) old.child.send(outcome);
    // The old rackd exits once it has told its client (or, on a failure, runs on as main).
    else if (!outcome.ok && old === this.#main && old.child.exitCode !== null) await this.#exited(old, old.child.exitCode, null);
  }

  /** A router that died with rackd comes back at once from its persisted table, before rackd does. */
  async #reviveRouter(): Promise<void> {
    const probe = await probeRouter(this.opts.router.socketPath, PROBE_TIMEOUT_MS);
    if (probe === 'answers') return;
    try {
      // One that is stuck rather than gone still holds the router's lock: the one started exits.
      const spawned = await spawnRouterProcess(this.opts.router);
      const why = probe === 'gone' ? 'the router was not running; started it' : `the router did not answer within ${PROBE_TIMEOUT_MS / 1000} s; started one`;
      this.opts.log.warn({ pid: spawned.pid, port: spawned.port }, `launcher: ${why}`);
    } catch (err) {
      this.opts.log.error({ err: String(err) }, 'launcher: could not start the router; rackd will');
    }
  }
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{'));
  return (lines.at(-1) ?? '').slice(0, 300);
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
