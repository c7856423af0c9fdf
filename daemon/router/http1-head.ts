/**
 * The head of an HTTP/1.x message (RFC 9112), parsed strictly. The router reads heads itself
 * and relays bodies as bytes, so it must agree with every app's server on where a message ends:
 * anything two parsers could read two ways (Content-Length beside Transfer-Encoding, two
 * different lengths, folded lines, bare CR or LF, a space before the colon) is refused rather
 * than guessed at.
 */

/** As node's own default: a head above this is refused (431 for a request). */
export const MAX_HEAD_BYTES = 16 * 1024;

/** How a message's body is delimited. `close`: by the end of the connection (responses only). */
export type Framing = { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' };

const NO_BODY: Framing = { kind: 'length', length: 0 };

/** The message has body bytes to read (or to leave unread). */
export function carriesBody(framing: Framing): boolean {
  return !(framing.kind === 'length' && framing.length === 0);
}

interface Head {
  /** Flat `[name, value, ...]` in the original case and order, values without surrounding blanks. */
  headers: string[];
  /** Each header's name in lower case, in the same order (`names[i]` is `headers[2 * i]`). */
  names: string[];
  /** Lower-cased tokens of every `Connection` header. */
  connection: ReadonlySet<string>;
  framing: Framing;
}

const NO_TOKENS: ReadonlySet<string> = new Set();

export interface RequestHead extends Head {
  method: string;
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: 0 | 1;
  /** The one Host header, as sent ('' when an HTTP/1.0 client sent none). */
  host: string;
  /** The `Upgrade` value when the client asks to switch protocols. */
  upgrade: string | undefined;
  /** The client waits for `100 Continue` before it sends the body. */
  expectsContinue: boolean;
  /** The connection may carry another request after this one. */
  keepAlive: boolean;
}

export interface ResponseHead extends Head {
  status: number;
  reason: string;
  minor: 0 | 1;
  keepAlive: boolean;
  /** How long the app keeps an idle connection open, when it says (`Keep-Alive: timeout=N`). */
  idleTimeoutMs: number | undefined;
}

/** A head the router refuses, with the status to answer (requests) or to report (responses). */
export class HeadError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'HeadError';
    this.status = status;
  }
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Visible ASCII and obs-text: no blanks, no controls. */
const TARGET = /^[\x21-\x7e\x80-\xff]+$/;
/** Field values: visible characters, blanks and obs-text; never a control but HTAB. */
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const DIGITS = /^[0-9]{1,15}$/;
/** What BAD_VALUE finds but CR and LF, which each line's end is checked for instead. */
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;
/** Per ASCII code: 0 not a token character (RFC 9110 §5.6.2), 1 one, 2 one that is an upper-case letter. */
const TOKEN_CHARS = ((): Uint8Array => {
  const table = new Uint8Array(128);
  for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") table[c.charCodeAt(0)] = 1;
  for (let c = 0x41; c <= 0x5a; c++) table[c] = 2;
  return table;
})();
const CRLF_CRLF = Buffer.from('\r\n\r\n', 'latin1');
const LF_LF = Buffer.from('\n\n', 'latin1');

/**
 * Where the head in `buf` ends (the index just past its blank line), -1 when more bytes are
 * needed; throws when the head is already too large or cannot end.
 */
export function headEnd(buf: Buffer, side: 'request' | 'response'): number {
  const status = side === 'request' ? 431 : 502;
  const at = buf.indexOf(CRLF_CRLF);
  if (at === -1) {
    if (buf.length > MAX_HEAD_BYTES) throw new HeadError(status, 'header section too large');
    // A head whose lines end in bare LF would otherwise be waited on until the timeout.
    if (buf.includes(LF_LF)) throw new HeadError(side === 'request' ? 400 : 502, 'bare LF line ends');
    return -1;
  }
  if (at + 4 > MAX_HEAD_BYTES) throw new HeadError(status, 'header section too large');
  return at + 4;
}

/** The start line and the header fields of a head (without its blank line). */
interface Fields {
  start: string;
  head: Head;
  /** The message said how its body is delimited (Content-Length or Transfer-Encoding). */
  delimited: boolean;
  hosts: number;
  host: string | undefined;
  upgrade: string | undefined;
  keepAlive: string | undefined;
  expect: string | undefined;
}

function fields(text: string, status: number): Fields {
  // Most heads hold no control character but the CRLFs between lines: one scan of the whole text
  // says so, and only in a head that fails it is each value searched for the culprit.
  const plain = !CONTROL.test(text);
  let eol = text.indexOf('\r\n');
  const start = eol === -1 ? text : text.slice(0, eol);
  if (bareBreak(text, 0, eol)) throw new HeadError(status, 'bare CR or LF in the start line');
  const headers: string[] = [];
  const names: string[] = [];
  let connection: Set<string> | undefined;
  let lengths: string | undefined;
  let encodings: string | undefined;
  let hosts = 0;
  let host: string | undefined;
  let upgrade: string | undefined;
  let keepAlive: string | undefined;
  let expect: string | undefined;
  while (eol !== -1) {
    const from = eol + 2;
    eol = text.indexOf('\r\n', from);
    const line = eol === -1 ? text.slice(from) : text.slice(from, eol);
    const colon = line.indexOf(':');
    if (colon <= 0) throw new HeadError(status, line[0] === ' ' || line[0] === '\t' ? 'folded header line' : 'malformed header line');
    const name = line.slice(0, colon);
    const lower = tokenInLowerCase(name);
    if (lower === undefined) throw new HeadError(status, 'invalid header name');
    const value = withoutBlanks(line, colon + 1);
    if ((!plain || bareBreak(text, from, eol)) && BAD_VALUE.test(value)) throw new HeadError(status, `invalid character in header ${name}`);
    if (lower === 'content-length') {
      for (const v of value.includes(',') ? value.split(',') : [value]) {
        const n = v.trim();
        if (!DIGITS.test(n)) throw new HeadError(status, 'invalid Content-Length');
        if (lengths !== undefined && lengths !== n) throw new HeadError(status, 'conflicting Content-Length headers');
        lengths = n;
      }
    } else if (lower === 'transfer-encoding') {
      encodings = encodings === undefined ? value : `${encodings}, ${value}`;
    } else if (lower === 'host') {
      hosts += 1;
      host = value;
    } else if (lower === 'upgrade') {
      upgrade ??= value;
    } else if (lower === 'keep-alive') {
      keepAlive = value;
    } else if (lower === 'expect') {
      expect = value;
    } else if (lower === 'connection') {
      connection ??= new Set();
      for (const t of value.split(',')) {
        const token = t.trim().toLowerCase();
        if (token !== '') connection.add(token);
      }
    }
    headers.push(name, value);
    names.push(lower);
  }
  let framing: Framing = NO_BODY;
  if (encodings !== undefined) {
    // Both at once is the classic smuggling shape (RFC 9112 §6.1): refuse it instead of choosing.
    if (lengths !== undefined) throw new HeadError(status, 'both Transfer-Encoding and Content-Length');
    const codings = encodings.split(',').map((c) => c.trim().toLowerCase());
    framing = codings[codings.length - 1] === 'chunked' ? { kind: 'chunked' } : { kind: 'close' };
    if (codings.filter((c) => c === 'chunked').length > 1) throw new HeadError(status, 'chunked applied twice');
  } else if (lengths !== undefined) {
    framing = { kind: 'length', length: Number(lengths) };
  }
  const head = { headers, names, connection: connection ?? NO_TOKENS, framing };
  return { start, head, delimited: encodings !== undefined || lengths !== undefined, hosts, host, upgrade, keepAlive, expect };
}

/** Whether `text[from, eol)` (eol -1: to the end) holds a CR or LF: the next of each must be eol's. */
function bareBreak(text: string, from: number, eol: number): boolean {
  return text.indexOf('\r', from) !== eol || text.indexOf('\n', from) !== (eol === -1 ? -1 : eol + 1);
}

/** A header name in lower case, or undefined when it is not a token; lower-cased only when it has to be. */
function tokenInLowerCase(name: string): string | undefined {
  let upper = false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const kind = c < 128 ? (TOKEN_CHARS[c] as number) : 0;
    if (kind === 0) return undefined;
    if (kind === 2) upper = true;
  }
  return upper ? name.toLowerCase() : name;
}

/** `line` from `from`, without the spaces and tabs around it (RFC 9110's OWS, and nothing else). */
function withoutBlanks(line: string, from: number): string {
  let start = from;
  let end = line.length;
  while (start < end && isBlank(line.charCodeAt(start))) start++;
  while (end > start && isBlank(line.charCodeAt(end - 1))) end--;
  return line.slice(start, end);
}

function isBlank(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/** Parses `buf[0, end)`, a whole request head ending in its blank line. */
export function parseRequestHead(buf: Buffer, end: number): RequestHead {
  let text = buf.toString('latin1', 0, end - 4);
  // RFC 9112 §2.2: a server should ignore blank lines before the request line.
  while (text.startsWith('\r\n')) text = text.slice(2);
  const { start, head, hosts, host, upgrade, expect } = fields(text, 400);
  const parts = start.split(' ');
  if (parts.length !== 3) throw new HeadError(400, 'malformed request line');
  const [method, target, version] = parts as [string, string, string];
  if (!TOKEN.test(method)) throw new HeadError(400, 'invalid method');
  if (!TARGET.test(target)) throw new HeadError(400, 'invalid request target');
  if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') {
    throw new HeadError(version.startsWith('HTTP/') ? 505 : 400, 'unsupported HTTP version');
  }
  const minor = version === 'HTTP/1.1' ? 1 : 0;
  // Only a final `chunked` delimits a request (RFC 9112 §6.3); anything else cannot be read.
  if (head.framing.kind === 'close') throw new HeadError(400, 'unsupported Transfer-Encoding');
  if (head.framing.kind === 'chunked' && minor === 0) throw new HeadError(400, 'Transfer-Encoding in an HTTP/1.0 request');
  if (hosts > 1) throw new HeadError(400, 'more than one Host header');
  if (host === undefined && minor === 1) throw new HeadError(400, 'missing Host header');
  return {
    headers: head.headers,
    names: head.names,
    connection: head.connection,
    framing: head.framing,
    method,
    target,
    minor,
    host: host ?? '',
    upgrade: upgrade !== undefined && head.connection.has('upgrade') ? upgrade : undefined,
    expectsContinue: expect !== undefined && expect.toLowerCase() === '100-continue',
    keepAlive: minor === 1 ? !head.connection.has('close') : head.connection.has('keep-alive'),
  };
}

/** Parses `buf[0, end)`, a whole response head; its framing follows the request it answers. */
export function parseResponseHead(buf: Buffer, end: number, method: string): ResponseHead {
  const { start, head, delimited, keepAlive } = fields(buf.toString('latin1', 0, end - 4), 502);
  // `HTTP/1.x NNN[ reason]`, read by hand: a regex with captures cost a fifth of the parse.
  const minorCode = start.charCodeAt(7);
  const status = threeDigits(start);
  if (!start.startsWith('HTTP/1.') || (minorCode !== 0x30 && minorCode !== 0x31) || start.charCodeAt(8) !== 0x20 || status === -1) {
    throw new HeadError(502, 'malformed status line');
  }
  if (start.length > 12 && start.charCodeAt(12) !== 0x20) throw new HeadError(502, 'malformed status line');
  const minor = minorCode === 0x31 ? 1 : 0;
  const reason = start.length > 13 ? start.slice(13) : '';
  if (BAD_VALUE.test(reason)) throw new HeadError(502, 'invalid reason phrase');
  // RFC 9112 §6.3: these never have a body, whatever their headers say.
  const bodiless = method === 'HEAD' || status < 200 || status === 204 || status === 304;
  const framing: Framing = bodiless ? NO_BODY : delimited ? head.framing : { kind: 'close' };
  return {
    headers: head.headers,
    names: head.names,
    connection: head.connection,
    framing,
    status,
    reason,
    minor,
    keepAlive: framing.kind !== 'close' && (minor === 1 ? !head.connection.has('close') : head.connection.has('keep-alive')),
    idleTimeoutMs: keepAlive === undefined ? undefined : idleTimeout(keepAlive),
  };
}

/** The status code at offset 9 of a status line, -1 when there are not three digits there. */
function threeDigits(line: string): number {
  let code = 0;
  for (let i = 9; i < 12; i++) {
    const c = line.charCodeAt(i);
    if (!(c >= 0x30 && c <= 0x39)) return -1;
    code = code * 10 + (c - 0x30);
  }
  return code;
}

/** `timeout=N` of a Keep-Alive header (`timeout=5, max=100`), in ms. */
function idleTimeout(value: string): number | undefined {
  const at = value.toLowerCase().indexOf('timeout=');
  if (at === -1) return undefined;
  const seconds = Number.parseInt(value.slice(at + 8, at + 14), 10);
  return Number.isNaN(seconds) || seconds < 0 ? undefined : seconds * 1000;
}
