import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { parseDestination, resolveDestination } from './drains/drain-destination.js';
import { RackError } from './rack-error.js';
import { MAX_MAINTENANCE_PAGE_BYTES } from './router/maintenance-page.js';

const FETCH_TIMEOUT_MS = 10_000;

/**
 * An app's own maintenance page (`maintenance:on --page URL`), fetched once by rackd when
 * maintenance goes on; the router serves that copy and never fetches per request. The URL is a
 * tenant's, so the drains' rules hold: http(s) only, a public address unless RACK_FETCH_ALLOW names
 * the host, the address checked is the one connected to, no redirects followed, a size cap.
 */
export async function fetchMaintenancePage(raw: string, allow: readonly string[]): Promise<string> {
  const dest = parseDestination(raw, ['https', 'http']);
  const address = await resolveDestination(dest, allow);
  const shown = `${dest.url.origin}${dest.url.pathname}`;
  const body = await new Promise<Buffer>((resolve, reject) => {
    const options = {
      host: address,
      port: dest.port,
      method: 'GET',
      path: `${dest.url.pathname}${dest.url.search}`,
      headers: { Host: dest.url.host, Accept: 'text/html', 'User-Agent': 'rack-maintenance-page/1' },
    };
    const onAnswer = (res: IncomingMessage): void => {
      res.on('error', reject);
      if (res.statusCode !== 200) {
        res.resume();
        reject(new RackError('bad_argument', `${shown} answered ${res.statusCode ?? 0}, not 200 (redirects are not followed)`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_MAINTENANCE_PAGE_BYTES) {
          req.destroy(new RackError('bad_argument', `${shown} is over ${MAX_MAINTENANCE_PAGE_BYTES / 1024} KiB; a maintenance page is one page`));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => resolve(Buffer.concat(chunks)));
    };
    const req =
      dest.scheme === 'https'
        ? httpsRequest({ ...options, ...(isIP(dest.host) === 0 ? { servername: dest.host } : {}) }, onAnswer)
        : httpRequest(options, onAnswer);
    req.setTimeout(FETCH_TIMEOUT_MS, () => req.destroy(new RackError('bad_argument', `${shown} gave no whole page in ${FETCH_TIMEOUT_MS / 1000} s`)));
    req.on('error', (err) => reject(err instanceof RackError ? err : new RackError('bad_argument', `could not fetch ${shown}: ${err.message}`, { cause: err })));
    req.end();
  });
  const page = body.toString('utf8');
  if (page.trim() === '') throw new RackError('bad_argument', `${shown} is empty`);
  return page;
}
