import { closeSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** rackd and its router each keep at most (1 + LOG_KEEP) × LOG_MAX_BYTES of log on disk. */
export const LOG_MAX_BYTES = 10 * 1024 * 1024;
export const LOG_KEEP = 3;

export interface RotationOptions {
  maxBytes?: number;
  /** How many rotated files (PATH.1 newest … PATH.keep oldest) are kept besides PATH. */
  keep?: number;
}

/**
 * A log file that stays bounded: when a write would take PATH past `maxBytes`, PATH becomes
 * PATH.1 (PATH.1 becomes PATH.2 and so on, the oldest beyond `keep` is deleted) and a new PATH is
 * started. It is a pino destination (anything with `write(line)`). Writes are synchronous, like
 * pino's own stdout, so the last line before a crash is in the file. A write that fails (a full
 * disk) is dropped rather than thrown: the log must never be what brings its process down.
 */
export class RotatingLogFile {
  readonly #path: string;
  readonly #maxBytes: number;
  readonly #keep: number;
  #fd: number | undefined;
  #size = 0;
  /** Lines lost to failed writes since the last one that worked; said in the file once it works again. */
  #dropped = 0;

  constructor(path: string, opts: RotationOptions = {}) {
    this.#path = path;
    this.#maxBytes = opts.maxBytes ?? LOG_MAX_BYTES;
    this.#keep = opts.keep ?? LOG_KEEP;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.#open();
  }

  write(chunk: string): boolean {
    const data = this.#dropped > 0 ? `${JSON.stringify({ msg: `log: ${this.#dropped} lines lost to failed writes` })}\n${chunk}` : chunk;
    const bytes = Buffer.byteLength(data);
    try {
      if (this.#size > 0 && this.#size + bytes > this.#maxBytes) this.#rotate();
      if (this.#fd === undefined) this.#open();
      writeSync(this.#fd!, data);
      this.#size += bytes;
      this.#dropped = 0;
    } catch {
      this.#dropped++;
    }
    return true;
  }

  /** pino calls this on flushSync(); writes are synchronous already. */
  flushSync(): void {}

  end(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  #open(): void {
    this.#fd = openSync(this.#path, 'a', 0o600);
    // Another writer (the router's stderr, a previous run) may have put lines there already.
    this.#size = fstatSync(this.#fd).size;
  }

  #rotate(): void {
    this.end();
    rmSync(`${this.#path}.${this.#keep}`, { force: true });
    for (let n = this.#keep - 1; n >= 1; n--) {
      try {
        renameSync(`${this.#path}.${n}`, `${this.#path}.${n + 1}`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    if (this.#keep > 0) renameSync(this.#path, `${this.#path}.1`);
    else rmSync(this.#path, { force: true });
    this.#open();
  }
}
