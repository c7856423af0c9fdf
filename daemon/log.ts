import { pino, type Logger } from 'pino';

/** Operator log: JSON lines on stdout. Users never see these; they get `----->` text instead. */
export function createLogger(level = process.env['RACK_LOG_LEVEL'] ?? 'info'): Logger {
  return pino({ level, base: { svc: 'rackd' } });
}

export type { Logger };
