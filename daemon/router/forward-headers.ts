import type { Socket } from 'node:net';
import type { RequestHead, ResponseHead } from './http1-head.js';

/** What the router does with a header of a given name, where it does not just pass it on. */
const enum Role {
  /** Describes one connection, not the message (RFC 9110 §7.6.1): never passed on. */
  HopByHop = 1,
  /** Kept whatever the client's Connection header lists: the app needs to know the site asked for. */
  Host,
  /** Replaced by the router's own value, so a client cannot forge where it came from or when. */
  Replaced,
  /** Extended with the client's address. */
  ForwardedFor,
  Length,
  Encoding,
  Hsts,
}

/** One lookup per header: each name is hashed once. */
const ROLES = new Map<string, Role>([
  ['host', Role.Host],
  ['connection', Role.HopByHop],
  ['keep-alive', Role.HopByHop],
  ['proxy-connection', Role.HopByHop],
  ['upgrade', Role.HopByHop],
  ['te', Role.HopByHop],
  ['trailer', Role.HopByHop],
  ['transfer-encoding', Role.Encoding],
  ['content-length', Role.Length],
  ['x-forwarded-proto', Role.Replaced],
  ['x-forwarded-host', Role.Replaced],
  ['x-forwarded-port', Role.Replaced],
  ['x-request-start', Role.Replaced],
  ['x-forwarded-for', Role.ForwardedFor],
  ['strict-transport-security', Role.Hsts],
]);

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
 * router's own framing header and X-Forwarded-*. Host is kept, even when Connection names it.
 */
export function requestHeadForUpstream(req: RequestHead, opts: RequestHeadOptions): string {
  const raw = req.headers;
  const names = req.names;
  const named = req.connection.size > 0;
  let head = `${req.method} ${req.target} HTTP/1.${req.minor}\r\n`;
  const forwardedFor: string[] = [];
  let saidLength = false;
  for (let i = 0; i < names.length; i++) {
    const lower = names[i] as string;
    const role = ROLES.get(lower);
    if (role === Role.ForwardedFor) forwardedFor.push(raw[2 * i + 1] as string);
    else if (role === Role.Length) saidLength = true;
    else if (role === Role.Host || ((role === undefined || role === Role.Hsts) && !(named && req.connection.has(lower)))) head += `${raw[2 * i] as string}: ${raw[2 * i + 1] as string}\r\n`;
  }
  const framing = req.framing;
  if (framing.kind === 'chunked') head += 'Transfer-Encoding: chunked\r\n';
  else if (framing.kind === 'length' && (framing.length > 0 || saidLength)) head += `Content-Length: ${framing.length}\r\n`;
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
  const names = res.names;
  const named = res.connection.size > 0;
  let head = `HTTP/1.1 ${res.status} ${res.reason}\r\n`;
  let hasHsts = false;
  let seenLength = false;
  let encodings: string | undefined;
  for (let i = 0; i < names.length; i++) {
    const lower = names[i] as string;
    const value = raw[2 * i + 1] as string;
    const role = ROLES.get(lower);
    if (role === Role.Encoding) {
      encodings = encodings === undefined ? value : `${encodings}, ${value}`;
      continue;
    }
    if (role === Role.HopByHop || (named && res.connection.has(lower))) continue;
    if (role === Role.Length) {
      // Duplicates were checked equal; most clients refuse two of them all the same.
      if (seenLength) continue;
      seenLength = true;
    }
    if (role === Role.Hsts) hasHsts = true;
    head += `${raw[2 * i] as string}: ${value}\r\n`;
  }
  if (encodings !== undefined) head += `Transfer-Encoding: ${encodings}\r\n`;
  if (opts.hsts && !hasHsts) head += HSTS;
  if (res.status === 101 && opts.upgrade !== undefined) head += `Connection: Upgrade\r\nUpgrade: ${headerValue(raw, 'upgrade') ?? opts.upgrade}\r\n`;
  else if (opts.close) head += 'Connection: close\r\n';
  return `${head}\r\n`;
}

function headerValue(raw: readonly string[], lower: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === lower) return raw[i + 1];
  return undefined;
}
