import type { LogLine } from '../logs/log-hub.js';

/**
 * One log line as Heroku's Logplex writes it, RFC 5424 as Heroku bends it:
 * `<PRI>1 TIMESTAMP HOST APPNAME PROCID - MSG`. MSGID is `-` and there is no STRUCTURED-DATA
 * field at all, exactly as Logplex sends: receivers written for Heroku drains split seven fields
 * and take the rest as the message, so a second `-` would reach them as the start of every line.
 *
 * APPNAME and PROCID come from the line's source: `app[web.1]` is `app web.1`, the router's
 * `rack[router]` is `rack router` (Heroku's `heroku router`), rack's own notes `rack supervisor`,
 * `rack web.1` (a process's state, Heroku's `heroku web.1`).
 */
export function syslogMessage(line: LogLine, host: string): string {
  const m = /^([A-Za-z0-9_-]{1,48})\[([!-~]{1,128})\]$/.exec(line.source);
  const appName = m ? m[1]! : 'rack';
  const procId = m ? m[2]! : '-';
  return `<${priority(appName, procId)}>1 ${syslogTime(line.time)} ${host} ${appName} ${procId} - ${line.text.replace(/[\r\n]+/g, ' ')}`;
}

/**
 * Heroku's facilities: local7 for the app's own output, local3 for the router, local0 for the
 * platform's lines; severity info throughout (Logplex does not read levels out of text either).
 */
function priority(appName: string, procId: string): number {
  const facility = appName === 'app' ? 23 : procId === 'router' ? 19 : 16;
  return facility * 8 + 6;
}

/** `2026-12-06T04:05:20.123Z` → `2026-12-06T04:05:20.123000+00:00`, Logplex's form. */
export function syslogTime(iso: string): string {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z$/.exec(iso);
  if (!m) return new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000+00:00');
  return `${m[1]!}.${(m[2] ?? '').padEnd(6, '0')}+00:00`;
}

/** RFC 6587 octet counting: the message's length in bytes, a space, the message. */
export function octetFrame(message: string): string {
  return `${Buffer.byteLength(message, 'utf8')} ${message}`;
}
