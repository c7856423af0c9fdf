/**
 * A strict reader of RFC 6587 octet counting (`LEN SP MSG`, back to back): a length with a leading
 * zero, no digits, a missing space, or a body that ends inside a frame or has bytes after the
 * last one, is an error. Lengths count bytes, not characters.
 */
export function parseOctetFrames(body: Buffer): string[] {
  const out: string[] = [];
  let at = 0;
  while (at < body.length) {
    let end = at;
    while (end < body.length && body[end]! >= 0x30 && body[end]! <= 0x39) end++;
    const digits = body.subarray(at, end).toString('ascii');
    if (digits === '' || digits.length > 7 || (digits.length > 1 && digits.startsWith('0'))) throw new Error(`bad frame length at byte ${at}: ${JSON.stringify(body.subarray(at, at + 20).toString())}`);
    if (body[end] !== 0x20) throw new Error(`no space after the length at byte ${end}`);
    const length = Number(digits);
    const start = end + 1;
    if (start + length > body.length) throw new Error(`frame at byte ${at} says ${length} bytes, ${body.length - start} are left`);
    out.push(body.subarray(start, start + length).toString('utf8'));
    at = start + length;
  }
  return out;
}

export interface SyslogFields {
  pri: number;
  time: string;
  host: string;
  appName: string;
  procId: string;
  msg: string;
}

/** Heroku's RFC 5424 shape: `<PRI>1 TIME HOST APPNAME PROCID - MSG` (MSGID nil, no STRUCTURED-DATA). */
export function parseSyslog(message: string): SyslogFields {
  const m = /^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00) (\S+) (\S+) (\S+) - (.*)$/s.exec(message);
  if (!m) throw new Error(`not a syslog message in Heroku's shape: ${JSON.stringify(message.slice(0, 200))}`);
  return { pri: Number(m[1]), time: m[2]!, host: m[3]!, appName: m[4]!, procId: m[5]!, msg: m[6]! };
}
