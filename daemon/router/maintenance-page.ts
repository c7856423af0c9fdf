import type { RackAnswer } from './rack-answers.js';

/** `maintenance:on`: the app's page (fetched and kept by rackd), or rack's own when it has none. */
export interface Maintenance {
  /** HTML, at most MAX_MAINTENANCE_PAGE_BYTES; absent: rack's page. */
  page?: string;
}

/** A page is a page, not a site: what rackd keeps of one, and what the router accepts in a route. */
export const MAX_MAINTENANCE_PAGE_BYTES = 256 * 1024;

/** What clients are told to wait before trying again (Heroku's maintenance answer says the same). */
const RETRY_AFTER_SECONDS = 60;

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function rackPage(app: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Down for maintenance</title>
<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:15vh auto;padding:0 1rem;color:#222}h1{font-size:1.5rem}</style>
</head><body><h1>Down for maintenance</h1><p>${escape(app)} is being worked on and will be back shortly. Please try again in a minute.</p></body></html>
`;
}

/**
 * The 503 the router gives every request of an app in maintenance: the processes keep running,
 * nothing reaches them. HTML, since a browser is who reads it; never cached, as the app comes back.
 */
export function maintenanceAnswer(app: string, maintenance: Maintenance): RackAnswer {
  return {
    status: 503,
    headers: `Content-Type: text/html; charset=utf-8\r\nRetry-After: ${RETRY_AFTER_SECONDS}\r\n`,
    body: Buffer.from(maintenance.page ?? rackPage(app)),
  };
}
