import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Caller } from '../access/principal.js';
import { HTTP_STATUS } from '../http/http-status.js';
import { RackError } from '../rack-error.js';
import { html, type SafeHtml } from './html-template.js';
import { errorBox, page } from './layout-view.js';

const MAX_FORM = 64 * 1024;

/** One signed-in request to the console. */
export interface ConsoleRequest {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  caller: Caller;
  /** htmx asked for a part of a page, not a whole one. */
  partial: boolean;
  /** Whether the session (and its token) still holds: a long-lived stream checks it now and then. */
  stillSignedIn(): Promise<boolean>;
  /** Calls `end` the moment the session's token is revoked or expires; returns the function that stops watching. */
  watchSignOut(end: (reason: SignOutReason) => void): () => void;
}

/** Why a session ended under a page: the sign-in page says so. */
export type SignOutReason = 'revoked' | 'expired' | 'signed-out';

export const SIGN_OUT_WORDS: Record<SignOutReason, string> = {
  revoked: 'Your session ended: its token was revoked.',
  expired: 'Your session ended: its token expired.',
  'signed-out': 'Your session ended: sign in again.',
};

/** No inline script or style, nothing from elsewhere, no framing. */
export const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'same-origin',
  'X-Frame-Options': 'DENY',
};

export function sendHtml(res: ServerResponse, status: number, body: SafeHtml | string, headers: Record<string, string | string[]> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const data = Buffer.from(String(body));
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': data.length, 'Cache-Control': 'no-store', ...headers });
  res.end(data);
}

export function redirect(res: ServerResponse, location: string, headers: Record<string, string | string[]> = {}): void {
  res.writeHead(303, { ...SECURITY_HEADERS, Location: location, 'Cache-Control': 'no-store', ...headers });
  res.end();
}

/** An error as the page shows it: a whole page, or for htmx a box swapped where the answer goes. */
export function sendError(r: Pick<ConsoleRequest, 'res' | 'partial'> & { caller?: Caller }, err: unknown): void {
  const error = RackError.from(err);
  const status = HTTP_STATUS[error.code];
  const box = errorBox(error.code === 'internal' ? 'Something went wrong in rackd; the operator log has the details.' : error.message);
  if (r.partial) return sendHtml(r.res, status, box);
  sendHtml(r.res, status, page({ title: 'Error', ...(r.caller ? { principal: r.caller.principal } : {}), body: html`<h1>${String(status)}</h1>${box}<p><a href="/console/">Back to the apps</a></p>` }));
}

/** A urlencoded form body (htmx and plain forms both send one), at most 64 KiB. */
export async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new RackError('unsupported_media_type', 'send the form as application/x-www-form-urlencoded');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM) throw new RackError('payload_too_large', `a form may hold at most ${MAX_FORM} bytes`);
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** The scheme and host the browser used, as the router forwarded them; `hostname` is the host without its port. */
export function publicOrigin(req: IncomingMessage): { origin: string; secure: boolean; hostname: string } {
  const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v)?.split(',')[0]?.trim();
  const proto = first(req.headers['x-forwarded-proto']) === 'https' ? 'https' : 'http';
  const host = first(req.headers['x-forwarded-host']) ?? req.headers.host ?? 'rack';
  const hostname = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
  return { origin: `${proto}://${host}`, secure: proto === 'https', hostname };
}

/**
 * Whether a state-changing request came from the console's own pages: its Origin must be the
 * console's. (The session cookie is SameSite=Strict as well; this refuses what gets past that.)
 */
export function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  return origin !== undefined && origin !== 'null' && origin === publicOrigin(req).origin;
}
