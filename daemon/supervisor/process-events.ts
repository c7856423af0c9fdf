import { appEvents } from '../app-events.js';
import type { Logger } from '../log.js';
import type { LogHub } from '../logs/log-hub.js';
import type { ProcessDriver, ProcessEvent } from '../runtime/runtime.js';
import { noteExit, type CrashHistory } from './crash-loop.js';

const RESUBSCRIBE_MS = 2000;

/**
 * Tells an app's log what happened to its processes, in Heroku's words: a process killed for going
 * over its memory limit is an R15, and every exit says its status. The engine's events are the
 * source, so crashes while nobody follows the output are still told.
 */
export class ProcessEvents {
  private abort: AbortController | undefined;
  /** Recent exits by container, for crash loops; a removed container's entry goes with it. */
  private readonly crashes = new Map<string, CrashHistory>();

  constructor(
    private readonly processes: Pick<ProcessDriver, 'events'>,
    private readonly hub: LogHub,
    private readonly log: Logger,
    /** Every event, for the supervisor: the router drops a dead web process at once, a gone one is replaced. */
    private readonly onEvent: (e: ProcessEvent) => void = () => {},
  ) {}

  start(): void {
    const abort = new AbortController();
    this.abort = abort;
    const follow = async (): Promise<void> => {
      while (!abort.signal.aborted) {
        try {
          await this.processes.events((e) => {
            this.onEvent(e);
            if (e.kind === 'destroy') this.crashes.delete(e.id);
            if (e.kind === 'die') this.noteExit(e);
            // R15 is in the app's log already (below); webhooks hear of it as a crash too.
            if (e.kind === 'oom') appEvents.emit({ kind: 'crash', app: e.app, action: 'memory', data: { process: e.dyno, type: e.type, error: 'R15' } });
            if (e.kind !== 'oom' && e.kind !== 'die') return;
            const source = `rack[${e.dyno}]`;
            const text =
              e.kind === 'oom'
                ? 'Error R15 (Memory quota vastly exceeded): the process went over its memory limit and was killed'
                : `Process exited with status ${e.exitCode}`;
            this.hub.push({ time: new Date().toISOString(), app: e.app, source, type: e.type, text });
          }, abort.signal);
        } catch (err) {
          this.log.debug({ err: String(err) }, 'process events: stream failed');
        }
        if (!abort.signal.aborted) await new Promise((r) => setTimeout(r, RESUBSCRIBE_MS).unref());
      }
    };
    void follow();
  }

  /** A crash loop goes to the event bus: webhooks, and (event-lines) the app's log and drains. */
  private noteExit(e: ProcessEvent): void {
    const { history, tell } = noteExit(this.crashes.get(e.id), Date.now());
    this.crashes.set(e.id, history);
    if (!tell) return;
    const process = e.dyno;
    this.log.warn({ app: e.app, process, exitCode: e.exitCode }, 'crash loop');
    appEvents.emit({ kind: 'crash', app: e.app, action: 'crashed', data: { process, type: e.type, exitCode: e.exitCode, exits: history.exits.length, withinSeconds: Math.ceil((Date.now() - history.exits[0]!) / 1000) } });
  }

  stop(): void {
    this.abort?.abort();
  }
}
