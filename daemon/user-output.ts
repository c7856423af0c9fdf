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

/** Longest line held back: output without newlines must not grow a buffer without end. */
export const MAX_LINE = 64 * 1024;

/**
 * Splits a byte stream into lines, holding back a partial last line until more arrives or `end()`.
 * A line longer than `maxLine` characters is passed on in pieces of that size.
 */
export function lineSplitter(onLine: (line: string) => void, maxLine = MAX_LINE): { push(chunk: Buffer | string): void; end(): void } {
  let rest = '';
  return {
    push(chunk) {
      rest += chunk.toString();
      const lines = rest.split(/\r?\n/);
      rest = lines.pop() ?? '';
      for (const line of lines) {
        for (let i = 0; i < line.length || i === 0; i += maxLine) onLine(line.slice(i, i + maxLine));
      }
      while (rest.length > maxLine) {
        onLine(rest.slice(0, maxLine));
        rest = rest.slice(maxLine);
      }
    },
    end() {
      if (rest !== '') onLine(rest);
      rest = '';
    },
  };
}
