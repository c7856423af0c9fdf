import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import type { LogLine } from './log-hub.js';
import type { LogKeep } from './log-keep.js';
import { matchingLines, MAX_ANSWER_BYTES, type LogQuery } from './log-query.js';
import { activeName, closedName, decodeLine, encodeLine, listSegments, readBackward, type Segment } from './log-segment.js';

export interface AppLogOptions {
  keep: LogKeep;
  /** A segment is closed once it holds this many bytes. */
  segmentBytes: number;
  /** Written once this many bytes wait, else FLUSH_MS after the first of them. */
  flushBytes: number;
  /** Most bytes waiting for the disk; lines past it are dropped and counted. */
  bufferBytes: number;
  now: () => number;
  log: Logger;
}

export const FLUSH_MS = 100;

/**
 * One app's log on disk: lines are buffered and appended in batches (no sync: a line lost in a
 * crash is no reason to make every app's output wait on the disk), segments are closed by size,
 * and the oldest go when the app is past its size or age bound. One step at a time runs on the
 * files (`#steps`); `append` never waits, so a slow disk never holds up reading a process's output.
 */
export class AppLog {
  #closed: Segment[] = [];
  #active: Segment | undefined;
  #fh: FileHandle | undefined;
  #nextSeq = 1;
  #pending: string[] = [];
  #pendingBytes = 0;
  #dropped = 0;
  #droppedTotal = 0;
  #timer: NodeJS.Timeout | undefined;
  #flushQueued = false;
  #failing = false;
  #steps: Promise<void>;
  /**
   * After a restart, the newest stored line of each process: adoption reads a process's last lines
   * from Docker again, and those already stored are not stored twice.
   */
  #replayed = new Map<string, { time: string; texts: Set<string> }>();

  constructor(
    readonly app: string,
    private readonly dir: string,
    private readonly opts: AppLogOptions,
  ) {
    this.#steps = this.#open().catch((err: unknown) => {
      opts.log.warn({ app, err: String(err) }, 'could not open the app\'s log store');
      this.#failing = true;
    });
  }

  /** Lines dropped because the disk was slower than the app's output, since rackd started. */
  get dropped(): number {
    return this.#droppedTotal;
  }

  append(line: LogLine): void {
    const encoded = encodeLine(line);
    const bytes = Buffer.byteLength(encoded);
    if (this.#pendingBytes + bytes > this.opts.bufferBytes) {
      this.#dropped++;
      this.#droppedTotal++;
      return;
    }
    this.#pending.push(encoded);
    this.#pendingBytes += bytes;
    if (this.#pendingBytes >= this.opts.flushBytes) this.#queueFlush();
    else this.#timer ??= setTimeout(() => this.#queueFlush(), FLUSH_MS).unref();
  }

  /** Resolves once every line appended before the call is on disk (or dropped by a failed write). */
  flush(): Promise<void> {
    this.#queueFlush();
    return this.#steps;
  }

  /** The last `limit` stored lines that pass the query, oldest first. */
  async query(q: LogQuery): Promise<LogLine[]> {
    await this.flush();
    const oldest = new Date(this.opts.now() - this.opts.keep.maxAgeMs).toISOString();
    const filter = { ...q, since: q.since === undefined || q.since < oldest ? oldest : q.since };
    const segments = [...this.#closed, ...(this.#active ? [{ ...this.#active }] : [])].reverse();
    // Newest chunks first; each chunk's matches stay in order, so the answer is the chunks reversed.
    const found: LogLine[][] = [];
    let count = 0;
    let bytes = 0;
    for (const s of segments) {
      if (count >= q.limit || bytes >= MAX_ANSWER_BYTES) break;
      if (s.last === undefined || s.last < filter.since || (filter.until !== undefined && s.first !== undefined && s.first > filter.until)) continue;
      const read = (path: string, size: number) =>
        readBackward(path, size, (chunk) => {
          const lines = matchingLines(this.app, chunk, filter);
          found.push(lines);
          count += lines.length;
          for (const l of lines) bytes += l.text.length;
          return count >= q.limit || bytes >= MAX_ANSWER_BYTES;
        });
      try {
        await read(s.path, s.bytes >= 0 ? s.bytes : (await stat(s.path)).size);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        // The segment being written was closed (renamed) meanwhile: read it under its new name, as
        // far as it was when the query began. Otherwise the age or size bound removed it.
        const renamed = this.#closed.find((c) => c.seq === s.seq);
        if (renamed) await read(renamed.path, s.bytes).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)));
      }
    }
    const lines = found.reverse().flat();
    let start = lines.length;
    for (let held = 0; start > 0 && lines.length - start < q.limit; start--) {
      held += lines[start - 1]!.text.length;
      if (held > MAX_ANSWER_BYTES) break;
    }
    // Processes' clocks and Docker's delivery interleave a little: the answer reads in time order.
    return lines.slice(start).sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  }

  /** Removes what is past the age bound (the size bound is kept at every write). */
  prune(): Promise<void> {
    return this.#step(async () => {
      const oldest = new Date(this.opts.now() - this.opts.keep.maxAgeMs).toISOString();
      while (this.#closed[0] !== undefined && (this.#closed[0].last ?? '') < oldest) await this.#removeOldest();
      if (this.#active?.last !== undefined && this.#active.last < oldest) {
        await this.#fh?.close();
        this.#fh = undefined;
        await rm(this.#active.path, { force: true });
        this.#active = undefined;
      }
    });
  }

  /** Writes what waits and closes the file; nothing is appended after. */
  async close(): Promise<void> {
    await this.flush();
    await this.#step(async () => {
      await this.#fh?.close();
      this.#fh = undefined;
    });
  }

  #queueFlush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    void this.#step(async () => {
      this.#flushQueued = false;
      await this.#write();
      if (this.#failing) this.opts.log.info({ app: this.app }, 'log store writes again');
      this.#failing = false;
    });
  }

  /** Runs `work` after the steps before it; a failed step is logged, and the next ones still run. */
  #step(work: () => Promise<void>): Promise<void> {
    this.#steps = this.#steps.then(work).catch((err: unknown) => {
      // Said once, not at every flush of a full disk; the lines lost meanwhile are counted.
      if (!this.#failing) this.opts.log.warn({ app: this.app, err: String(err) }, 'log store write failed; the app\'s lines are dropped until a write succeeds');
      this.#failing = true;
    });
    return this.#steps;
  }

  async #open(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const { closed, active } = await listSegments(this.dir);
    for (const s of closed) s.bytes = (await stat(s.path)).size;
    this.#closed = closed;
    // Only the newest unnamed segment is written on; an older one (a crash between rename and the
    // next open cannot make one, but a copied folder might) is closed now.
    for (const seq of active) {
      const path = join(this.dir, activeName(seq));
      const scanned = await scan(this.app, path);
      if (seq !== active[active.length - 1] || scanned.first === undefined) {
        if (scanned.first === undefined) await rm(path, { force: true });
        else {
          const named = join(this.dir, closedName(seq, scanned.first, scanned.last!));
          await rename(path, named);
          this.#closed.push({ seq, path: named, first: scanned.first, last: scanned.last, bytes: scanned.bytes });
        }
        continue;
      }
      this.#active = { seq, path, first: scanned.first, last: scanned.last, bytes: scanned.bytes };
      this.#replayed = scanned.newest;
    }
    this.#closed.sort((a, b) => a.seq - b.seq);
    this.#nextSeq = Math.max(0, ...this.#closed.map((s) => s.seq), this.#active?.seq ?? 0) + 1;
  }

  async #write(): Promise<void> {
    const lines = this.#pending;
    const dropped = this.#dropped;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#dropped = 0;
    if (dropped > 0) {
      this.opts.log.warn({ app: this.app, dropped }, 'log lines dropped: the disk is slower than the app\'s output');
      lines.push(encodeLine({ time: new Date(this.opts.now()).toISOString(), app: this.app, source: 'rack[logs]', type: 'logs', text: `${dropped} lines dropped: the disk was slower than the app's output` }));
    }
    const kept = this.#replayed.size === 0 ? lines : lines.filter((l) => !this.#isReplayed(l));
    if (kept.length === 0) return;
    if (!this.#active) {
      const seq = this.#nextSeq++;
      this.#active = { seq, path: join(this.dir, activeName(seq)), first: undefined, last: undefined, bytes: 0 };
    }
    const active = this.#active;
    this.#fh ??= await open(active.path, 'a', 0o600);
    const data = Buffer.from(kept.join(''));
    try {
      await this.#fh.write(data);
    } catch (err) {
      this.#droppedTotal += kept.length;
      throw err;
    }
    active.bytes += data.length;
    for (const l of kept) {
      const time = l.slice(0, 24);
      if (active.first === undefined || time < active.first) active.first = time;
      if (active.last === undefined || time > active.last) active.last = time;
    }
    if (active.bytes >= this.opts.segmentBytes) await this.#rotate();
    let total = this.#closed.reduce((sum, s) => sum + s.bytes, this.#active?.bytes ?? 0);
    while (total > this.opts.keep.maxBytes && this.#closed[0] !== undefined) {
      total -= this.#closed[0].bytes;
      await this.#removeOldest();
    }
  }

  async #rotate(): Promise<void> {
    const active = this.#active!;
    await this.#fh?.close();
    this.#fh = undefined;
    const path = join(this.dir, closedName(active.seq, active.first!, active.last!));
    await rename(active.path, path);
    this.#closed.push({ ...active, path });
    this.#active = undefined;
  }

  async #removeOldest(): Promise<void> {
    const oldest = this.#closed.shift()!;
    await rm(oldest.path, { force: true });
  }

  #isReplayed(encoded: string): boolean {
    const line = decodeLine(this.app, encoded.slice(0, -1));
    const newest = line && this.#replayed.get(line.source);
    if (!line || !newest) return false;
    if (line.time > newest.time) {
      this.#replayed.delete(line.source);
      return false;
    }
    return line.time < newest.time || newest.texts.has(line.text);
  }
}

/** A segment's span of times, size, and each source's newest time (with the texts at that time). */
async function scan(app: string, path: string): Promise<{ first?: string; last?: string; bytes: number; newest: Map<string, { time: string; texts: Set<string> }> }> {
  const bytes = (await stat(path)).size;
  let first: string | undefined;
  let last: string | undefined;
  const newest = new Map<string, { time: string; texts: Set<string> }>();
  await readBackward(path, bytes, (chunk) => {
    for (const line of matchingLines(app, chunk, {})) {
      if (first === undefined || line.time < first) first = line.time;
      if (last === undefined || line.time > last) last = line.time;
      const seen = newest.get(line.source);
      if (!seen || line.time > seen.time) newest.set(line.source, { time: line.time, texts: new Set([line.text]) });
      else if (line.time === seen.time) seen.texts.add(line.text);
    }
    return false;
  });
  return { ...(first === undefined ? {} : { first, last }), bytes, newest };
}
