import { createHmac } from 'node:crypto';
import type { AppEvent } from '../app-events.js';

/** The header with the body's signature: Heroku's `Heroku-Webhook-Hmac-SHA256` scheme, under rack's name. */
export const SIGNATURE_HEADER = 'Rack-Webhook-Hmac-SHA256';

/**
 * An event as a webhook's JSON body, in the shape of Heroku's app webhooks: `resource` and `action`
 * say what happened, `data` the resource now, `actor` who did it, `webhook_metadata` which webhook,
 * delivery and attempt this is (a retried delivery keeps its ID, so a receiver can drop a repeat).
 */
export function webhookBody(e: AppEvent, ids: { webhook: string; delivery: string; attempt: number }): Buffer {
  return Buffer.from(
    JSON.stringify({
      id: ids.delivery,
      resource: e.kind,
      action: e.action,
      app: { name: e.app },
      actor: { name: e.actor ?? 'rack' },
      data: e.data,
      created_at: e.at,
      published_at: new Date().toISOString(),
      version: '1',
      webhook_metadata: {
        webhook: { id: ids.webhook },
        delivery: { id: ids.delivery },
        event: { include: `rack:${e.kind}` },
        attempt: { number: ids.attempt },
      },
    }),
    'utf8',
  );
}

/** Base64 of HMAC-SHA256 of the exact body bytes with the webhook's secret, as Heroku signs. */
export function signature(secret: string, body: Buffer): string {
  return createHmac('sha256', secret).update(body).digest('base64');
}
