import type { IncomingMessage } from 'node:http';

/**
 * Headers that describe one connection, not the message (RFC 9110 §7.6.1). A proxy must not pass
 * them on, and undici refuses several of them outright. `expect` is here too: node has already
 * answered `100 Continue` to the client and undici does not support sending it.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'expect',
]);

/** Replaced by the router's own values, so a client cannot forge where it came from or when. */
const FORWARDED_REPLACED = new Set(['x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-request-start']);

/** Header names listed in `Connection` are hop-by-hop for this message too. */
function connectionTokens(value: string | undefined): Set<string> {
  const tokens = new Set<string>();
  // What nearly every client sends; the names are hop-by-hop already.
  if (value === undefined || value === 'keep-alive' || value === 'close') return tokens;
  for (const t of value.split(',')) {
    const name = t.trim().toLowerCase();
    if (name !== '') tokens.add(name);
  }
  return tokens;
}

/** Loopback and bridge peers arrive as IPv4-mapped IPv6; apps expect the dotted form. */
export function clientAddress(req: IncomingMessage): string | undefined {
  const addr = req.socket.remoteAddress;
  if (addr === undefined) return undefined;
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

export interface RequestHeaderOptions {
  /** Keep `Connection: upgrade` and `Upgrade` for a websocket tunnel. */
  upgrade: boolean;
  /** How the client reached the router: X-Forwarded-Proto. */
  proto: 'http' | 'https';
}

/**
 * The flat `[name, value, ...]` list sent upstream: the client's headers in their original case
 * and order (so duplicates survive), minus hop-by-hop ones, plus X-Forwarded-*. Host is kept.
 */
export function requestHeadersForUpstream(req: IncomingMessage, opts: RequestHeaderOptions): string[] {
  const raw = req.rawHeaders;
  const dropped = connectionTokens(req.headers.connection);
  const out: string[] = [];
  const forwardedFor: string[] = [];
  let upgradeValue: string | undefined;
  let seenHost = false;
  let seenLength = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    if (lower === 'upgrade') upgradeValue ??= value;
    if (HOP_BY_HOP.has(lower) || dropped.has(lower) || FORWARDED_REPLACED.has(lower)) continue;
    if (lower === 'x-forwarded-for') {
      forwardedFor.push(value);
      continue;
    }
    // undici rejects a request with two of either; node's parser let the duplicate through.
    if (lower === 'host') {
      if (seenHost) continue;
      seenHost = true;
    } else if (lower === 'content-length') {
      if (seenLength) continue;
      seenLength = true;
    }
    out.push(name, value);
  }
  if (opts.upgrade && upgradeValue !== undefined) out.push('Connection', 'Upgrade', 'Upgrade', upgradeValue);
  const client = clientAddress(req);
  if (client !== undefined) forwardedFor.push(client);
  if (forwardedFor.length > 0) out.push('X-Forwarded-For', forwardedFor.join(', '));
  out.push('X-Forwarded-Proto', opts.proto);
  const host = req.headers.host;
  if (host !== undefined) out.push('X-Forwarded-Host', host);
  // As Heroku's router: the port the client connected to, and when (ms since the epoch) the
  // router took the request, so an app can measure its queueing time.
  const port = req.socket.localPort;
  if (port !== undefined) out.push('X-Forwarded-Port', String(port));
  out.push('X-Request-Start', String(Date.now()));
  return out;
}

export interface ClientHeaders {
  /** Flat `[name, value, ...]`, original case and order. */
  headers: string[];
  /** The app sent its own Strict-Transport-Security. */
  hasHsts: boolean;
}

/**
 * An upstream response's raw headers (latin1 bytes as undici gives them) cleaned for the client.
 * Each byte string is decoded once; the list is filtered a second time only when `Connection`
 * names a header beyond the usual hop-by-hop ones, which almost no app does.
 */
export function responseHeadersForClient(raw: readonly (Buffer | string)[]): ClientHeaders {
  const headers: string[] = [];
  let connection: string | undefined;
  let hasHsts = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = latin1(raw[i]);
    const value = latin1(raw[i + 1]);
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') connection = connection === undefined ? value : `${connection},${value}`;
      continue;
    }
    if (lower === 'strict-transport-security') hasHsts = true;
    headers.push(name, value);
  }
  if (connection === undefined) return { headers, hasHsts };
  const named = [...connectionTokens(connection)].filter((t) => !HOP_BY_HOP.has(t));
  if (named.length === 0) return { headers, hasHsts };
  const dropped = new Set(named);
  const kept: string[] = [];
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i] as string;
    if (!dropped.has(name.toLowerCase())) kept.push(name, headers[i + 1] as string);
  }
  return { headers: kept, hasHsts: hasHsts && !dropped.has('strict-transport-security') };
}

function latin1(v: Buffer | string | undefined): string {
  if (v === undefined) return '';
  return typeof v === 'string' ? v : v.toString('latin1');
}
