/**
 * When a failed forward may be sent again to another upstream: only when the upstream cannot
 * have acted on it, since a second copy of a request that did reach an app could charge a card
 * twice.
 */

/** Methods whose repetition the app must already tolerate. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

export interface AttemptState {
  method: string;
  /** The client request has a body; once part of it went upstream, it cannot be replayed. */
  hasBody: boolean;
  /** The connection to the upstream was established (a request body is held back until then). */
  connected: boolean;
  /** The connection was a pooled keep-alive one that served an earlier request. */
  reused: boolean;
  /** Some byte of the upstream's answer arrived. */
  responseStarted: boolean;
}

export function mayRetry(attempt: AttemptState): boolean {
  if (attempt.responseStarted) return false;
  // Refused, unreachable or timed out while connecting: not a byte reached the app.
  if (!attempt.connected) return true;
  // The remaining race: a pooled connection the app closed (its idle timeout) just as the request
  // was written. A fresh connection that closes may be the app dying on this very request.
  return attempt.reused && !attempt.hasBody && SAFE_METHODS.has(attempt.method);
}
