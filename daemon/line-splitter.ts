import { StringDecoder } from 'node:string_decoder';

/** Longest line held back: output without newlines must not grow a buffer without end. */
export const MAX_LINE = 64 * 1024;

export interface LineSplitter {
  push(chunk: Buffer | string): void;
  /** Passes on a last line that had no newline. */
  end(): void;
}

/**
 * The one line splitter: bytes in, whole lines out (`\n` or `\r\n`), a partial last line held back
 * until more arrives or `end()`, and a UTF-8 character split across chunks kept whole. A line
 * longer than `maxLine` characters is passed on in pieces of that size, unless `onTooLong` is
 * given: then the peer is not speaking our protocol, and nothing more is passed on.
 */
export function lineSplitter(onLine: (line: string) => void, opts: { maxLine?: number; onTooLong?: () => void } = {}): LineSplitter {
  const maxLine = opts.maxLine ?? MAX_LINE;
  const decoder = new StringDecoder('utf8');
  let rest = '';
  let refused = false;
  return {
    push(chunk) {
      if (refused) return;
      rest += typeof chunk === 'string' ? chunk : decoder.write(chunk);
      const lines = rest.split(/\r?\n/);
      rest = lines.pop() ?? '';
      const tooLong = rest.length > maxLine || lines.some((l) => l.length > maxLine);
      if (tooLong && opts.onTooLong) {
        refused = true;
        rest = '';
        opts.onTooLong();
        return;
      }
      for (const line of lines) {
        for (let i = 0; i < line.length || i === 0; i += maxLine) onLine(line.slice(i, i + maxLine));
      }
      while (rest.length > maxLine) {
        onLine(rest.slice(0, maxLine));
        rest = rest.slice(maxLine);
      }
    },
    end() {
      if (refused) return;
      rest += decoder.end();
      if (rest !== '') onLine(rest);
      rest = '';
    },
  };
}
