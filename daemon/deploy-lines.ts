/** A push's user line, or its end: what the pusher's terminal shows, told as it is said. */
export type DeployLine = { app: string; push: string; text: string } | { app: string; push: string; done: { ok: boolean } };

/**
 * Pushes' output as it happens, for whoever watches an app live (the Console's Releases tab). It
 * sits at daemon/'s root, like app-events.ts, so git/ tells it without knowing the console.
 * Listeners catch their own errors: a push must never fail for one.
 */
export class DeployLines {
  readonly #listeners = new Set<(line: DeployLine) => void>();

  emit(line: DeployLine): void {
    for (const listener of this.#listeners) {
      try {
        listener(line);
      } catch {
        // The listener's failure is its own (see above).
      }
    }
  }

  /** Calls `listener` for every line until the returned function is called. */
  on(listener: (line: DeployLine) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }
}

/** rackd's one instance (one rackd per process, as with `appEvents`). */
export const deployLines = new DeployLines();
