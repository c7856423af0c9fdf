import type { ServerResponse } from 'node:http';
import { RackError } from '../rack-error.js';
import { HTTP_STATUS } from './http-status.js';

/** A whole JSON answer. */
export function answerJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const data = Buffer.from(`${JSON.stringify(body, null, 2)}\n`);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': data.length, 'Cache-Control': 'no-store', ...headers });
  res.end(data);
}

/** `{"error": {"code", "message"}}` with the status that fits the code. */
export function answerError(res: ServerResponse, err: unknown, headers: Record<string, string> = {}): void {
  const error = RackError.from(err);
  answerJson(res, HTTP_STATUS[error.code], { error: { code: error.code, message: error.message } }, headers);
}
