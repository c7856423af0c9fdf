import type { IncomingMessage } from 'node:http';
import { RackError } from '../rack-error.js';

/** A request body larger than this is refused (config values, public keys: all far smaller). */
export const MAX_BODY_BYTES = 1024 * 1024;
/**
 * A refused body up to this size is still read to its end, so the client can read the refusal (a
 * server that closes on a client still sending makes it see a reset, not the answer); past it the
 * connection is simply cut.
 */
export const MAX_DISCARD_BYTES = 16 * 1024 * 1024;

/**
 * The JSON object a request carries: `{}` when it carries nothing. Refuses other content types,
 * bodies over the limit (reading stops there) and anything but one JSON object.
 */
export async function readJsonBody(req: IncomingMessage, max = MAX_BODY_BYTES): Promise<Record<string, unknown>> {
  const length = req.headers['content-length'];
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if (!chunked && (length === undefined || length === '0')) return {};
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new RackError('unsupported_media_type', `send JSON with Content-Type: application/json (got ${JSON.stringify(type.slice(0, 60) || 'none')})`);
  }
  const tooLarge = new RackError('payload_too_large', `the body is over ${max / 1024} KiB`);
  if (length !== undefined && Number(length) > MAX_DISCARD_BYTES) throw tooLarge;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_DISCARD_BYTES) throw tooLarge;
    if (size <= max) chunks.push(chunk);
  }
  if (size > max) throw tooLarge;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new RackError('bad_argument', `the body is not valid JSON: ${(err as Error).message.slice(0, 100)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new RackError('bad_argument', 'the body must be a JSON object');
  return value as Record<string, unknown>;
}
