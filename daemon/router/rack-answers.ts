import type { ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * The router's own answers (unknown host, nothing running, upstream failed): short plain text,
 * so they are told apart from an app's pages at a glance.
 */
export function answerPlain(res: ServerResponse, status: number, text: string, close = false): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = Buffer.from(`${text}\n`);
  const headers: Record<string, string | number> = {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': body.length,
    'Cache-Control': 'no-store',
  };
  // After a half-read upload the rest of the request is still on the socket; reusing it would
  // parse body bytes as the next request.
  if (close) headers['Connection'] = 'close';
  res.writeHead(status, headers);
  res.end(body);
}

/** Same answer, for an upgrade request whose socket node has already handed over raw. */
export function answerPlainRaw(socket: Duplex, status: number, text: string): void {
  if (socket.destroyed) return;
  const body = Buffer.from(`${text}\n`);
  const head =
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${body.length}\r\n` +
    'Connection: close\r\n\r\n';
  socket.end(Buffer.concat([Buffer.from(head, 'latin1'), body]));
}

/** rackd is down or restarting: its host answers in the API's own error shape, apps keep serving. */
export function answerRackUnavailable(res: ServerResponse, close = false): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = Buffer.from(
    `${JSON.stringify({ error: { code: 'rack_unavailable', message: 'rack is not running right now (apps keep serving); try again shortly' } })}\n`,
  );
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': body.length,
    'Cache-Control': 'no-store',
    'Retry-After': 5,
  };
  if (close) headers['Connection'] = 'close';
  res.writeHead(503, headers);
  res.end(body);
}
