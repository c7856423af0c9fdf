/** The headers of a CGI program's answer (RFC 3875 §6): `Status:` and the HTTP headers to pass on. */
export interface CgiHead {
  status: number;
  headers: Record<string, string>;
}

/** Headers the HTTP server sets itself, or that would speak for the connection rather than the answer. */
const NOT_PASSED = new Set(['status', 'connection', 'transfer-encoding', 'keep-alive', 'upgrade', 'trailer', 'set-cookie', 'location']);
const NAME = /^[A-Za-z0-9-]{1,64}$/;
/** Where a CGI head may end: the first empty line, CRLF or bare LF (git writes CRLF). */
const END = /\r?\n\r?\n/;
/** A head longer than this is not git's. */
export const MAX_CGI_HEAD = 16 * 1024;

/** The offset of the body after a complete head in `text`, or -1 while the head is incomplete. */
export function cgiHeadEnd(text: string): { head: number; body: number } | undefined {
  const m = END.exec(text);
  return m ? { head: m.index, body: m.index + m[0].length } : undefined;
}

/** Parses the head's lines; throws on what is not a CGI head. */
export function parseCgiHead(head: string): CgiHead {
  let status = 200;
  const headers: Record<string, string> = {};
  for (const line of head.split(/\r?\n/)) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).trim() : '';
    if (!NAME.test(name)) throw new Error(`not a CGI header line: ${JSON.stringify(line.slice(0, 80))}`);
    const value = line.slice(colon + 1).trim();
    const lower = name.toLowerCase();
    if (lower === 'status') {
      const code = Number(/^([1-5][0-9]{2})\b/.exec(value)?.[1]);
      if (!Number.isInteger(code)) throw new Error(`bad CGI status ${JSON.stringify(value.slice(0, 40))}`);
      status = code;
    } else if (!NOT_PASSED.has(lower)) {
      headers[name] = value;
    }
  }
  return { status, headers };
}
