import { randomBytes } from 'node:crypto';
import type { LogLine } from '../logs/log-hub.js';
import { octetFrame, syslogMessage } from './syslog-frame.js';

/** One POST of an HTTPS drain: its body and the headers Logplex sends with it. */
export interface LogplexRequest {
  body: Buffer;
  headers: Record<string, string>;
}

/**
 * An HTTPS drain's request, as Heroku's Logplex makes it: `Content-Type: application/logplex-1`,
 * the message count, a frame ID (32 hex digits, new for every batch: a receiver drops a batch it
 * has seen, so a retry of the same batch keeps its ID), the drain's token, and a body of
 * octet-counted messages back to back, each ending in a newline that its count includes (Logplex's
 * own example: `70 <174>1 ... Hi from erlang` is 69 bytes and the newline, ten of them 730 bytes).
 * The app's name stands in HOSTNAME, where Heroku writes `host`.
 */
export function logplexRequest(lines: readonly LogLine[], token: string, frameId: string): LogplexRequest {
  const body = Buffer.from(lines.map((l) => octetFrame(`${syslogMessage(l, l.app)}\n`)).join(''), 'utf8');
  return {
    body,
    headers: {
      'Content-Type': 'application/logplex-1',
      'Logplex-Msg-Count': String(lines.length),
      'Logplex-Frame-Id': frameId,
      'Logplex-Drain-Token': token,
      'User-Agent': 'rack-logplex/1',
      'Content-Length': String(body.length),
    },
  };
}

export function newFrameId(): string {
  return randomBytes(16).toString('hex').toUpperCase();
}
