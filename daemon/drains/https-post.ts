import { request as httpRequest, type IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { Agent, request as httpsRequest } from 'node:https';
import type { Destination } from './drain-destination.js';

export interface PostAnswer {
  status: number;
  /** The first KiB of the answer, for `webhooks:deliveries`. */
  body: string;
}

const ANSWER_KEEP = 1024;
/** Past this, an answer is cut off: a receiver streaming for ever would hold the queue behind it. */
const ANSWER_MAX = 64 * 1024;

/**
 * One POST to a checked address (`address`), the name kept for SNI, the certificate check and
 * `Host`. Resolves with any status (the caller decides what counts), rejects on a network error or
 * when no answer came in `timeoutMs`. Credentials in the URL go as Basic authorization, as Logplex
 * sends them. `timeoutMs` bounds the whole exchange, not only silences: a receiver trickling bytes
 * gets no longer than one that says nothing.
 */
export function postTo(
  dest: Destination,
  address: string,
  body: Buffer,
  headers: Record<string, string>,
  opts: { timeoutMs: number; agent?: Agent; signal?: AbortSignal },
): Promise<PostAnswer> {
  return new Promise((resolve, reject) => {
    const auth = dest.url.username === '' ? undefined : `${decodeURIComponent(dest.url.username)}:${decodeURIComponent(dest.url.password)}`;
    const options = {
      host: address,
      port: dest.port,
      method: 'POST',
      path: `${dest.url.pathname}${dest.url.search}`,
      headers: { ...headers, Host: dest.url.host },
      ...(auth === undefined ? {} : { auth }),
      ...(opts.signal ? { signal: opts.signal } : {}),
    };
    const onAnswer = (res: IncomingMessage): void => {
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on('data', (c: Buffer) => {
        if (kept < ANSWER_KEEP) chunks.push(c.subarray(0, ANSWER_KEEP - kept));
        kept += c.length;
        if (kept > ANSWER_MAX) req.destroy(new Error(`the answer is over ${ANSWER_MAX / 1024} KiB`));
      });
      res.on('error', reject);
      res.on('close', () => {
        clearTimeout(deadline);
        if (!res.complete) reject(new Error('the answer was cut off'));
      });
      res.on('end', () => {
        clearTimeout(deadline);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
    };
    const req =
      dest.scheme === 'https'
        ? httpsRequest({ ...options, ...(isIP(dest.host) === 0 ? { servername: dest.host } : {}), ...(opts.agent ? { agent: opts.agent } : {}) }, onAnswer)
        : httpRequest(options, onAnswer);
    const deadline = setTimeout(() => req.destroy(new Error(`no whole answer in ${Math.round(opts.timeoutMs / 1000)} s`)), opts.timeoutMs);
    req.on('error', (err) => {
      clearTimeout(deadline);
      reject(err);
    });
    req.end(body);
  });
}
