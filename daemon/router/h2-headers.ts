import type { OutgoingHttpHeaders } from 'node:http2';
import type { ResponseHead } from './http1-head.js';
import type { RackAnswer } from './rack-answers.js';

/**
 * HTTP/1.1 fields an app may answer with that have no place in HTTP/2 (RFC 9113 §8.2.2): they
 * describe the app's connection, which the client never sees. The body is re-framed in DATA
 * frames, so Transfer-Encoding goes too.
 */
const NOT_RELAYED = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'http2-settings']);

/** As over HTTP/1.1 (forward-headers.ts): one year, HTTPS only. */
const HSTS = 'max-age=31536000';

/**
 * An app's HTTP/1.1 answer head as HTTP/2 fields: names in lower case, the connection's own fields
 * and those its Connection header names left out. Repeated fields are joined with commas as
 * RFC 9110 §5.3 allows, except Set-Cookie, which cannot be joined and goes as one field per cookie.
 */
export function h2ResponseHeaders(res: ResponseHead, hsts: boolean): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = Object.create(null) as OutgoingHttpHeaders;
  out[':status'] = res.status;
  const raw = res.headers;
  const names = res.names;
  const named = res.connection.size > 0;
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    if (NOT_RELAYED.has(name) || (named && res.connection.has(name))) continue;
    const value = raw[2 * i + 1] as string;
    const had = out[name];
    if (had === undefined) out[name] = name === 'set-cookie' ? [value] : value;
    else if (Array.isArray(had)) had.push(value);
    // Duplicate lengths were checked equal by the parser: one is enough.
    else if (name !== 'content-length') out[name] = `${String(had)}, ${value}`;
  }
  if (hsts && out['strict-transport-security'] === undefined) out['strict-transport-security'] = HSTS;
  return out;
}

/** One of rack's own answers (rack-answers.ts) as HTTP/2 fields; its body goes in DATA. */
export function h2AnswerHeaders(answer: RackAnswer): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = Object.create(null) as OutgoingHttpHeaders;
  out[':status'] = answer.status;
  for (const line of answer.headers.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) out[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  out['content-length'] = answer.body.length;
  out['cache-control'] = 'no-store';
  out['x-content-type-options'] = 'nosniff';
  return out;
}

/** The size of a field list as HTTP/2 counts it (RFC 9113 §6.5.2: name, value and 32 per field). */
export function fieldBytes(headers: OutgoingHttpHeaders): number {
  let n = 0;
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value]) n += name.length + String(v).length + 32;
  }
  return n;
}
