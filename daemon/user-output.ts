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
}

export function textOutput(write: (line: string) => void): UserOutput {
  return {
    header: (text) => write(`-----> ${text}`),
    detail: (text) => write(`       ${text}`),
    error: (text) => write(` !     ${text}`),
    raw: (text) => write(text),
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
