import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { LogLine } from './log-hub.js';

/**
 * One app's log is a folder of segment files, each a run of lines in the order they came:
 * `TIME TYPE SOURCE TEXT\n`, the time first (ISO, always 24 characters, so times compare as
 * strings). The segment being written is `SEQ.log`; a full one is renamed `SEQ.FIRST-LAST.log`
 * with the span of its times in milliseconds: the folder's listing is the index `--since` seeks by,
 * and a rename cannot leave it disagreeing with the files after a crash.
 */
export interface Segment {
  seq: number;
  path: string;
  /** Oldest and newest line times (ISO); undefined for an empty segment. */
  first: string | undefined;
  last: string | undefined;
  bytes: number;
}

/** Longest text a stored line keeps; the rest is cut and the cut said (Heroku's logplex cuts at 10,000 bytes). */
export const MAX_STORED_TEXT = 8 * 1024;

const ACTIVE = /^(\d{10})\.log$/;
const CLOSED = /^(\d{10})\.(\d{1,15})-(\d{1,15})\.log$/;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const CHUNK = 1024 * 1024;

export function activeName(seq: number): string {
  return `${String(seq).padStart(10, '0')}.log`;
}

export function closedName(seq: number, first: string, last: string): string {
  return `${String(seq).padStart(10, '0')}.${Date.parse(first)}-${Date.parse(last)}.log`;
}

/** The folder's segments, oldest first; `active` is the one still written (the highest unnamed one). */
export async function listSegments(dir: string): Promise<{ closed: Segment[]; active: number[] }> {
  const closed: Segment[] = [];
  const active: number[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const c = CLOSED.exec(name);
    if (c) {
      closed.push({ seq: Number(c[1]), path: join(dir, name), first: new Date(Number(c[2])).toISOString(), last: new Date(Number(c[3])).toISOString(), bytes: -1 });
      continue;
    }
    const a = ACTIVE.exec(name);
    if (a) active.push(Number(a[1]));
  }
  return { closed: closed.sort((x, y) => x.seq - y.seq), active: active.sort((x, y) => x - y) };
}

/** A time in the stored form: ISO with milliseconds (Docker's nanoseconds are cut). */
export function storedTime(time: string): string {
  if (ISO.test(time)) return time;
  const ms = Date.parse(time);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : new Date().toISOString();
}

/** The stored form of a line; a text over MAX_STORED_TEXT bytes is cut at a character boundary. */
export function encodeLine(line: LogLine): string {
  let text = line.text.replace(/[\r\n]/g, ' ');
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_STORED_TEXT) {
    text = `${Buffer.from(text).subarray(0, MAX_STORED_TEXT).toString('utf8').replace(/\uFFFD+$/, '')} [${bytes - MAX_STORED_TEXT} more bytes cut]`;
  }
  return `${storedTime(line.time)} ${word(line.type)} ${word(line.source)} ${text}\n`;
}

function word(s: string): string {
  return s === '' ? '-' : s.replace(/\s/g, '_');
}

/** A stored line back as a LogLine; undefined for a torn or foreign one. */
export function decodeLine(app: string, raw: string): LogLine | undefined {
  if (raw.length < 28 || raw[24] !== ' ') return undefined;
  const typeEnd = raw.indexOf(' ', 25);
  const sourceEnd = typeEnd < 0 ? -1 : raw.indexOf(' ', typeEnd + 1);
  if (sourceEnd < 0) return undefined;
  return { time: raw.slice(0, 24), app, source: raw.slice(typeEnd + 1, sourceEnd), type: raw.slice(25, typeEnd), text: raw.slice(sourceEnd + 1) };
}

/**
 * Reads the first `size` bytes of a segment from the end backwards, a chunk of whole lines at a
 * time (each chunk's lines in their own order, as bytes: a grep looks for its text before any of
 * it is decoded), until `onChunk` returns true. A line is never split between chunks; a torn last
 * line (a crash mid-write) comes as it is.
 */
export async function readBackward(path: string, size: number, onChunk: (chunk: Buffer) => boolean): Promise<void> {
  const fh = await open(path, 'r');
  try {
    let end = size;
    let carry = Buffer.alloc(0);
    while (end > 0) {
      const start = Math.max(0, end - CHUNK);
      const buf = Buffer.allocUnsafe(end - start);
      const { bytesRead } = await fh.read(buf, 0, buf.length, start);
      const data = carry.length > 0 ? Buffer.concat([buf.subarray(0, bytesRead), carry]) : buf.subarray(0, bytesRead);
      end = start;
      // The bytes before the first newline belong to a line that began in the chunk before.
      const from = start === 0 ? 0 : data.indexOf(10) + 1;
      if (start > 0 && from === 0) {
        carry = Buffer.from(data);
        continue;
      }
      carry = Buffer.from(data.subarray(0, from));
      if (onChunk(data.subarray(from))) return;
    }
  } finally {
    await fh.close();
  }
}
