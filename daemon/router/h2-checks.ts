import { HeadError, MAX_HEAD_BYTES, type Framing, type RequestHead } from './http1-head.js';
import { normalizeHost } from './route-table.js';

/**
 * The checks of an HTTP/2 request's header list (RFC 9113 §8.2-8.3), and its translation into the
 * HTTP/1.1 head the router sends an app. Node's nghttp2 already resets most malformed streams before
 * they reach the router (uppercase names, connection-specific fields, `te` other than trailers,
 * missing, duplicate, unknown or misplaced pseudo-headers, a Content-Length the DATA disagrees with,
 * extended CONNECT, which rack never offers); it drops a field with invalid bytes without a word.
 * Everything is checked here again all the same: what reaches an app must be safe whatever the
 * library lets through, and two of the shapes (a CONNECT, a `host` that names another site than
 * `:authority`) are well-formed HTTP/2 that only the router can refuse.
 */

const PSEUDO = new Set([':method', ':scheme', ':authority', ':path']);
/** RFC 9113 §8.2.2: fields that describe an HTTP/1 connection, never sent in HTTP/2. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
/** Lower-case tchars only: HTTP/2 field names are lower case (RFC 9113 §8.2.1). */
const NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const METHOD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A request target in origin form: visible ASCII and obs-text, starting with '/'. */
const PATH = /^\/[\x21-\x7e\x80-\xff]*$/;
/** A field value: no control byte but HTAB, and no blank at either end (RFC 9113 §8.2.1). */
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]|^[ \t]|[ \t]$/;
/** host[:port], the host a name or a bracketed IPv6 literal: no userinfo, path or blank. */
const AUTHORITY = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::[0-9]{0,5})?$/;
const DIGITS = /^[0-9]{1,15}$/;
/** Methods whose empty body an app may want said (`Content-Length: 0`), as HTTP/1.1 clients do. */
const SAYS_EMPTY_LENGTH = new Set(['POST', 'PUT', 'PATCH']);

/**
 * The HTTP/1.1 request an HTTP/2 stream becomes, or a HeadError(400) naming what is wrong.
 * `raw`: the stream's header list as received, `[name, value, ...]` in order; `endStream`: the
 * HEADERS frame ended the stream (no body follows). The result is read by requestHeadForUpstream
 * exactly as a parsed HTTP/1.1 head: `host` first (from `:authority`), cookies joined into one field
 * (RFC 9113 §8.2.3), a body without a Content-Length relayed chunked.
 */
export function h2RequestHead(raw: readonly string[], endStream: boolean): RequestHead {
  if (raw.length % 2 !== 0) throw new HeadError(400, 'malformed header list');
  const pseudo = new Map<string, string>();
  const headers: string[] = [];
  const names: string[] = [];
  const cookies: string[] = [];
  let size = 0;
  let regularSeen = false;
  let host: string | undefined;
  let length: string | undefined;
  let expect: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    size += name.length + value.length + 32;
    if (size > MAX_HEAD_BYTES) throw new HeadError(431, 'header section too large');
    if (BAD_VALUE.test(value)) throw new HeadError(400, `invalid character in header ${name.slice(0, 64)}`);
    if (name.startsWith(':')) {
      if (name === ':protocol') throw new HeadError(400, 'extended CONNECT is not served');
      if (!PSEUDO.has(name)) throw new HeadError(400, `unknown pseudo-header ${name.slice(0, 64)}`);
      if (regularSeen) throw new HeadError(400, 'pseudo-header after a regular header');
      if (pseudo.has(name)) throw new HeadError(400, `duplicate ${name}`);
      pseudo.set(name, value);
      continue;
    }
    regularSeen = true;
    if (!NAME.test(name)) throw new HeadError(400, 'invalid header name');
    if (CONNECTION_SPECIFIC.has(name)) throw new HeadError(400, `connection-specific header ${name}`);
    if (name === 'te') {
      if (value.toLowerCase() !== 'trailers') throw new HeadError(400, 'te other than trailers');
      // Means nothing to an HTTP/1.1 app, which never sends trailers the router would relay.
      continue;
    }
    if (name === 'host') {
      if (host !== undefined) throw new HeadError(400, 'more than one host header');
      host = value;
      continue;
    }
    if (name === 'cookie') {
      cookies.push(value);
      continue;
    }
    if (name === 'content-length') {
      if (!DIGITS.test(value)) throw new HeadError(400, 'invalid content-length');
      if (length !== undefined && length !== value) throw new HeadError(400, 'conflicting content-length headers');
      if (length !== undefined) continue;
      length = value;
    }
    if (name === 'expect') expect = value;
    headers.push(name, value);
    names.push(name);
  }
  const method = pseudo.get(':method');
  if (method === undefined) throw new HeadError(400, 'missing :method');
  if (!METHOD.test(method)) throw new HeadError(400, 'invalid :method');
  // Refused with a 400 rather than a stream reset: the request is well-formed HTTP/2 (RFC 9113
  // §8.5), rack is simply no tunnel, and a status says so. Extended CONNECT (RFC 8441, with
  // :protocol) is not offered in SETTINGS, so nghttp2 resets such a stream before it gets here.
  if (method === 'CONNECT') throw new HeadError(400, 'CONNECT is not served');
  const scheme = pseudo.get(':scheme');
  const path = pseudo.get(':path');
  if (scheme === undefined || path === undefined) throw new HeadError(400, 'missing :scheme or :path');
  // The only listener speaking HTTP/2 is the TLS one.
  if (scheme !== 'https') throw new HeadError(400, ':scheme is not https');
  if (!PATH.test(path) && !(path === '*' && method === 'OPTIONS')) throw new HeadError(400, 'invalid :path');
  const authority = pseudo.get(':authority');
  if (authority !== undefined && !AUTHORITY.test(authority)) throw new HeadError(400, 'invalid :authority');
  if (host !== undefined && !AUTHORITY.test(host)) throw new HeadError(400, 'invalid host');
  // Two names for the site, read differently by two parsers, is the HTTP/2 version of two Hosts.
  if (authority !== undefined && host !== undefined && normalizeHost(authority) !== normalizeHost(host)) {
    throw new HeadError(400, ':authority and host disagree');
  }
  const site = authority ?? host;
  if (site === undefined || site === '') throw new HeadError(400, 'missing :authority');
  if (endStream && length !== undefined && length !== '0') throw new HeadError(400, 'content-length with no body');
  let framing: Framing;
  if (length !== undefined) framing = { kind: 'length', length: Number(length) };
  else if (endStream) framing = { kind: 'length', length: 0 };
  else framing = { kind: 'chunked' };
  if (endStream && length === undefined && SAYS_EMPTY_LENGTH.has(method)) {
    headers.push('content-length', '0');
    names.push('content-length');
  }
  if (cookies.length > 0) {
    headers.push('cookie', cookies.join('; '));
    names.push('cookie');
  }
  return {
    headers: ['host', site, ...headers],
    names: ['host', ...names],
    connection: new Set(),
    framing,
    method,
    target: path,
    minor: 1,
    host: site,
    upgrade: undefined,
    expectsContinue: expect !== undefined && expect.toLowerCase() === '100-continue',
    keepAlive: true,
  };
}
