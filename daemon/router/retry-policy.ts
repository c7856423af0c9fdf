/**
 * When a failed forward may be sent again to another upstream: only when the upstream cannot
 * have acted on it, since a second copy of a request that did reach an app could charge a card
 * twice.
 */

/** Failures while opening the connection or before undici wrote anything. */
const NEVER_SENT = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  // The pool was retired (its upstream left the route table) between picking it and dispatching.
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
]);

/** Methods whose repetition the app must already tolerate. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

export interface AttemptState {
  method: string;
  /** undici handed the request to a socket (onRequestStart ran), so bytes may have been written. */
  dispatched: boolean;
  /** The client request has a body; once undici has read from it, it cannot be replayed. */
  hasBody: boolean;
  /** Some byte of the upstream's answer arrived. */
  responseStarted: boolean;
}

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

export function mayRetry(err: unknown, attempt: AttemptState): boolean {
  if (attempt.responseStarted) return false;
  const code = errorCode(err);
  if (code === undefined || !NEVER_SENT.has(code)) return false;
  // undici fails queued requests when the connect fails; none of them touched a socket or the body.
  if (!attempt.dispatched) return true;
  // The remaining race: a pooled keep-alive connection the upstream closed just as the request was
  // written. undici reports it as "other side closed"; bytes read earlier on that socket show it
  // was a reused connection, not a fresh one the app dropped while handling this very request.
  if (code !== 'UND_ERR_SOCKET' || attempt.hasBody || !SAFE_METHODS.has(attempt.method)) return false;
  const bytesRead = (err as { socket?: { bytesRead?: unknown } }).socket?.bytesRead;
  return typeof bytesRead === 'number' && bytesRead > 0;
}
