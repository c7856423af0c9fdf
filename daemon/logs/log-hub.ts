import { EventEmitter } from 'node:events';

export interface LogLine {
  /** ISO time the line was written. */
  time: string;
  app: string;
  /** `app[web.1a2b3c]` for a process, `rack[router]` for the router's access lines. */
  source: string;
  /** The process type (`web`, `worker`), or `router`. */
  type: string;
  text: string;
}

const KEEP_PER_APP = 2000;

/**
 * The recent output of every app, merged: its processes' lines and the router's access lines.
 * A bounded buffer per app serves `logs -n`; subscribers serve `logs -f`.
 */
export class LogHub {
  private readonly buffers = new Map<string, LogLine[]>();
  private readonly events = new EventEmitter();

  constructor() {
    // One listener per `logs -f` client; many may watch one app.
    this.events.setMaxListeners(0);
  }

  push(line: LogLine): void {
    let buffer = this.buffers.get(line.app);
    if (!buffer) {
      buffer = [];
      this.buffers.set(line.app, buffer);
    }
    buffer.push(line);
    if (buffer.length > KEEP_PER_APP) buffer.splice(0, buffer.length - KEEP_PER_APP);
    this.events.emit(line.app, line);
  }

  recent(app: string, count: number, type?: string): LogLine[] {
    const lines = (this.buffers.get(app) ?? []).filter((l) => type === undefined || l.type === type);
    return [...lines].sort((a, b) => a.time.localeCompare(b.time)).slice(-count);
  }

  /** Calls `onLine` for every new line of the app until the returned function is called. */
  follow(app: string, onLine: (line: LogLine) => void): () => void {
    this.events.on(app, onLine);
    return () => this.events.off(app, onLine);
  }

  forget(app: string): void {
    this.buffers.delete(app);
  }
}

export function formatLogLine(l: LogLine): string {
  return `${l.time} ${l.source}: ${l.text}`;
}
