import { destination, multistream, pino, type Logger } from 'pino';
import { RotatingLogFile } from './rotating-log-file.js';

/**
 * Operator log: JSON lines on stdout and, when `file` is given, in that file too (kept bounded by
 * rotation), so what happened is still on disk when nobody kept rackd's stdout. Users never see
 * these; they get `----->` text instead.
 */
export function createLogger(level = process.env['RACK_LOG_LEVEL'] ?? 'info', file?: string): Logger {
  const base = { svc: 'rackd' };
  if (file === undefined) return pino({ level, base });
  const streams = [
    { level, stream: destination({ dest: 1, sync: true }) },
    { level, stream: new RotatingLogFile(file) },
  ];
  return pino({ level, base }, multistream(streams));
}

export type { Logger };
