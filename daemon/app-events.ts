import { EventEmitter } from 'node:events';

/** What webhooks may subscribe to (`webhooks:add --events`), in Heroku's words where it has them. */
export const APP_EVENT_KINDS = ['build', 'release', 'rollback', 'crash', 'addon', 'scale'] as const;
export type AppEventKind = (typeof APP_EVENT_KINDS)[number];

/** Something that happened to an app, told once to whoever listens (webhooks, drains). */
export interface AppEvent {
  kind: AppEventKind;
  app: string;
  /** `succeeded`, `failed`, `create`, `destroy`, `update`, `crashed`. */
  action: string;
  /** The key or token that caused it; absent for what rack did on its own (a crash). */
  actor?: string;
  /** The resource as it is now: a build's or release's number and status, a formation, ... */
  data: Record<string, unknown>;
  at: string;
}

/**
 * The one place events of apps are told. It sits at daemon/'s root so that the folders where things
 * happen (build/, supervisor/, addons/, the pipeline) tell it without knowing who listens, and the
 * listeners (notifications/, drains/) never reach back into them.
 *
 * A listener that throws is logged by nobody here: listeners catch their own errors, because an
 * event is told from the middle of a deploy that must not fail for it.
 */
export class AppEvents {
  readonly #emitter = new EventEmitter();

  constructor() {
    this.#emitter.setMaxListeners(0);
  }

  emit(event: Omit<AppEvent, 'at'> & { at?: string }): void {
    const full: AppEvent = { ...event, at: event.at ?? new Date().toISOString() };
    for (const listener of this.#emitter.listeners('event') as ((e: AppEvent) => void)[]) {
      try {
        listener(full);
      } catch {
        // A listener's failure is its own (see above); the others still hear of it.
      }
    }
  }

  /** Calls `listener` for every event until the returned function is called. */
  on(listener: (event: AppEvent) => void): () => void {
    this.#emitter.on('event', listener);
    return () => this.#emitter.off('event', listener);
  }
}

/**
 * rackd's one bus. A module-level instance rather than one threaded through every constructor:
 * the points that tell events are deep in components other work changes, and a test rackd is its
 * own process, so one per process is one per rackd.
 */
export const appEvents = new AppEvents();
