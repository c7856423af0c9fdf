import type { ConsoleEvents, NumberedEvent } from './console-events.js';
import { SECURITY_HEADERS, type ConsoleRequest, type SignOutReason } from './console-request.js';

const HEARTBEAT_MS = 15_000;

/**
 * A page's one stream of server-sent events. A reconnecting browser sends Last-Event-ID (or, when
 * console.js reopens a stream the browser gave up on, `?last=`): what it missed is replayed from
 * the app's ring, or a `reset` tells it to fetch its lists again (rackd restarted, or too much
 * happened meanwhile).
 */
export function serveEvents(r: ConsoleRequest, events: ConsoleEvents, app: string): void {
  const { req, res } = r;
  const header = req.headers['last-event-id'];
  const lastId = (Array.isArray(header) ? header[0] : header) ?? r.url.searchParams.get('last') ?? undefined;
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Accel-Buffering': 'no',
  });
  const send = (e: NumberedEvent) => res.write(`id: ${e.id}\nevent: ${e.event.type}\ndata: ${JSON.stringify(e.event)}\n\n`);
  res.write('retry: 2000\n\n');
  const sub = events.subscribe(app, lastId, send);
  if (sub.reset) res.write(`id: ${events.currentId(app)}\nevent: reset\ndata: {}\n\n`);
  else if (lastId === undefined) res.write(`id: ${events.currentId(app)}\nevent: hello\ndata: {}\n\n`);
  const signedOut = (reason: SignOutReason) => {
    if (!res.writableEnded) res.end(`event: signed-out\ndata: ${JSON.stringify({ reason })}\n\n`);
    end();
  };
  // A revoked or expired token ends the stream the moment it happens; each beat also checks the
  // session (a sign-out elsewhere, the idle limit).
  const unwatch = r.watchSignOut(signedOut);
  const beat = setInterval(() => {
    r.stillSignedIn().then(
      (ok) => (ok ? res.write(': beat\n\n') : signedOut('signed-out')),
      () => res.end(),
    );
  }, HEARTBEAT_MS);
  let ended = false;
  function end(): void {
    if (ended) return;
    ended = true;
    clearInterval(beat);
    unwatch();
    sub.stop();
  }
  res.once('close', end);
  req.once('close', end);
  res.on('error', end);
}
