import { STATUS_CODES } from 'node:http';
import { CONTROL_PLANE_APP } from './upstream.js';

/**
 * The router's own answers (unknown host, nothing running, upstream failed, bad request): short
 * plain text, so they are told apart from an app's pages at a glance, written whole in one go,
 * never sniffed by a browser as anything else.
 */
export interface RackAnswer {
  status: number;
  /** Header lines beyond the framing ones, each ending in CRLF. */
  headers: string;
  body: Buffer;
}

export function plainAnswer(status: number, text: string): RackAnswer {
  return { status, headers: 'Content-Type: text/plain; charset=utf-8\r\n', body: Buffer.from(`${text}\n`) };
}

/** rackd is down or restarting: its host answers in the API's own error shape, apps keep serving. */
export function rackUnavailableAnswer(): RackAnswer {
  const error = { code: 'rack_unavailable', message: 'rack is not running right now (apps keep serving); try again shortly' };
  return {
    status: 503,
    headers: 'Content-Type: application/json; charset=utf-8\r\nRetry-After: 5\r\n',
    body: Buffer.from(`${JSON.stringify({ error })}\n`),
  };
}

/** An app whose upstreams all failed the request: 502, or rack's own 503 for its own host. */
export function unansweredAnswer(app: string): RackAnswer {
  return app === CONTROL_PLANE_APP ? rackUnavailableAnswer() : plainAnswer(502, `Bad gateway: app ${app} did not answer`);
}

/** 308 keeps the method and body, so a form POST to http:// is not turned into a GET. */
export function redirectAnswer(location: string): RackAnswer {
  return { status: 308, headers: `Location: ${location}\r\n`, body: Buffer.alloc(0) };
}

/**
 * The answer's bytes. `close` adds `Connection: close`: after a request whose body was not read
 * the rest of it is still on the socket, and reading on would take body bytes for a request.
 */
export function answerBytes(answer: RackAnswer, opts: { close: boolean; head: boolean }): Buffer {
  const head =
    `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? ''}\r\n${answer.headers}` +
    `Content-Length: ${answer.body.length}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n${opts.close ? 'Connection: close\r\n' : ''}\r\n`;
  const bytes = Buffer.from(head, 'latin1');
  return opts.head || answer.body.length === 0 ? bytes : Buffer.concat([bytes, answer.body]);
}
