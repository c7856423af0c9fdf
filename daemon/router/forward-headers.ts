import type { Socket } from 'node:net';
import type { RequestHead, ResponseHead } from './http1-head.js';

/**
 * Headers that describe one connection, not the message (RFC 9110 §7.6.1). A proxy must not pass
 * them on; the router writes its own framing and Connection headers.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

/** Replaced by the router's own values, so a client cannot forge where it came from or when. */
const FORWARDED_REPLACED = new Set(['x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-request-start']);

/** Loopback and bridge peers arrive as IPv4-mapped IPv6; apps expect the dotted form. */
export function clientAddress(socket: Socket): string | undefined {
  const addr = socket.remoteAddress;
  if (addr === undefined) return undefined;
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

export interface RequestHeadOptions {
  /** How the client reached the router: X-Forwarded-Proto. */
  proto: 'http' | 'https';
  /** The client's connection, for X-Forwarded-For and X-Forwarded-Port. */
  socket: Socket;
}

/**
 * The request head sent upstream: the client's headers in their original case and order (so
 * duplicates survive), minus hop-by-hop ones and those its Connection header names, with the
 * router's own framing header and X-Forwarded-*. Host is kept.
 */
export function requestHeadForUpstream(req: RequestHead, opts: RequestHeadOptions): string {
  const raw = req.headers;
  let head = `${req.method} ${req.target} HTTP/1.${req.minor}\r\n`;
  const forwardedFor: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || FORWARDED_REPLACED.has(lower) || lower === 'content-length' || req.connection.has(lower)) continue;
    if (lower === 'x-forwarded-for') {
      forwardedFor.push(raw[i + 1] as string);
      continue;
    }
    head += `${name}: ${raw[i + 1] as string}\r\n`;
  }
  const framing = req.framing;
  if (framing.kind === 'chunked') head += 'Transfer-Encoding: chunked\r\n';
  else if (framing.kind === 'length' && (framing.length > 0 || hasHeader(raw, 'content-length'))) head += `Content-Length: ${framing.length}\r\n`;
  if (req.upgrade !== undefined) head += `Connection: Upgrade\r\nUpgrade: ${req.upgrade}\r\n`;
  const client = clientAddress(opts.socket);
  if (client !== undefined) forwardedFor.push(client);
  if (forwardedFor.length > 0) head += `X-Forwarded-For: ${forwardedFor.join(', ')}\r\n`;
  head += `X-Forwarded-Proto: ${opts.proto}\r\n`;
  if (req.host !== '') head += `X-Forwarded-Host: ${req.host}\r\n`;
  // As Heroku's router: the port the client connected to, and when (ms since the epoch) the
  // router took the request, so an app can measure its queueing time.
  const port = opts.socket.localPort;
  if (port !== undefined) head += `X-Forwarded-Port: ${port}\r\n`;
  return `${head}X-Request-Start: ${Date.now()}\r\n\r\n`;
}

export interface ResponseHeadOptions {
  /** Add Strict-Transport-Security unless the app sent its own. */
  hsts: boolean;
  /** The router closes the client's connection after this answer. */
  close: boolean;
  /** A 101 answer to this Upgrade value: the protocol switch is passed on. */
  upgrade: string | undefined;
}

/** One year, as the HSTS preload list asks; only ever sent over HTTPS (RFC 6797 §7.2). */
const HSTS = 'Strict-Transport-Security: max-age=31536000\r\n';

/**
 * An upstream answer's head for the client: the app's headers in order, minus hop-by-hop ones
 * and those its Connection header names. The body is relayed as the app framed it, so its
 * Transfer-Encoding and one Content-Length are kept.
 */
export function responseHeadForClient(res: ResponseHead, opts: ResponseHeadOptions): string {
  const raw = res.headers;
  let head = `HTTP/1.1 ${res.status} ${res.reason}\r\n`;
  let hasHsts = false;
  let seenLength = false;
  let encodings: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (lower === 'transfer-encoding') {
      encodings = encodings === undefined ? (raw[i + 1] as string) : `${encodings}, ${raw[i + 1] as string}`;
      continue;
    }
    if (HOP_BY_HOP.has(lower) || res.connection.has(lower)) continue;
    if (lower === 'content-length') {
      // Duplicates were checked equal; most clients refuse two of them all the same.
      if (seenLength) continue;
      seenLength = true;
    }
    if (lower === 'strict-transport-security') hasHsts = true;
    head += `${name}: ${raw[i + 1] as string}\r\n`;
  }
  if (encodings !== undefined) head += `Transfer-Encoding: ${encodings}\r\n`;
  if (opts.hsts && !hasHsts) head += HSTS;
  if (res.status === 101 && opts.upgrade !== undefined) head += `Connection: Upgrade\r\nUpgrade: ${headerValue(raw, 'upgrade') ?? opts.upgrade}\r\n`;
  else if (opts.close) head += 'Connection: close\r\n';
  return `${head}\r\n`;
}

function hasHeader(raw: readonly string[], lower: string): boolean {
  return headerValue(raw, lower) !== undefined;
}

function headerValue(raw: readonly string[], lower: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === lower) return raw[i + 1];
  return undefined;
}
