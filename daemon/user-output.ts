/**
 * The user's channel: Heroku-style text that ends up as `remote:` lines on a push or as the output of
 * an ssh command. Operators read pino logs instead.
 */
export interface UserOutput {
  /** `-----> text` */
  header(text: string): void;
  /** indented detail under the last header */
  detail(text: string): void;
  /** ` !     text` */
  error(text: string): void;
  /** a line passed through untouched (a buildpack's own output) */
  raw(text: string): void;
  /** How full the way to the user is, when it can tell: a producer that can wait should. */
  flow?: OutputFlow;
}

/**
 * Back-pressure from the user's end: a build printing faster than the pusher's connection reads
 * must wait, or its output piles up in rackd's memory.
 */
export interface OutputFlow {
  full(): boolean;
  /** Resolves once the backlog has drained (or the way is gone). */
  drained(): Promise<void>;
}

export function textOutput(write: (line: string) => void, flow?: OutputFlow): UserOutput {
  return {
    header: (text) => write(`-----> ${text}`),
    detail: (text) => write(`       ${text}`),
    error: (text) => write(` !     ${text}`),
    raw: (text) => write(text),
    ...(flow ? { flow } : {}),
  };
}
