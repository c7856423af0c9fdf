/**
 * Every Console page, in one list: the accessibility test (test/console-axe.test.ts) checks each,
 * and `npm run console:screenshots` saves each at desktop and phone width. A page added to the
 * Console is added here, and both pick it up.
 *
 * Paths are relative to the console's origin; `{app}` is a deployed app with web and worker
 * processes (and an add-on), `{build}` one of its builds.
 */
export interface ConsolePage {
  /** The screenshot's file name (docs/console/NAME-1280.png, NAME-390.png). */
  name: string;
  path: string;
  /** Signed out (the sign-in page) instead of as the admin. */
  signedOut?: boolean;
}

export const CONSOLE_PAGES: ConsolePage[] = [
  { name: 'sign-in', path: '/console/sign-in', signedOut: true },
  { name: 'sign-in-revoked', path: '/console/sign-in?ended=revoked', signedOut: true },
  { name: 'apps', path: '/console/' },
  { name: 'app-overview', path: '/console/apps/{app}/' },
  { name: 'app-overview-7d', path: '/console/apps/{app}/?range=7d' },
  { name: 'app-metrics', path: '/console/apps/{app}/metrics' },
  { name: 'app-metrics-24h', path: '/console/apps/{app}/metrics?range=24h' },
  { name: 'app-addons', path: '/console/apps/{app}/addons' },
  { name: 'app-cron', path: '/console/apps/{app}/cron' },
  { name: 'app-releases', path: '/console/apps/{app}/releases' },
  { name: 'app-builds', path: '/console/apps/{app}/builds' },
  { name: 'app-build-log', path: '/console/apps/{app}/builds/{build}' },
  { name: 'app-deploys', path: '/console/apps/{app}/deploys' },
  { name: 'app-environment', path: '/console/apps/{app}/environment' },
  { name: 'app-processes', path: '/console/apps/{app}/processes' },
  { name: 'app-logs', path: '/console/apps/{app}/logs' },
  { name: 'app-logs-search', path: '/console/apps/{app}/logs?since=1h&grep=GET' },
  { name: 'app-domains', path: '/console/apps/{app}/domains' },
  { name: 'app-audit', path: '/console/apps/{app}/audit' },
  { name: 'app-destroy', path: '/console/apps/{app}/destroy' },
  { name: 'pipelines', path: '/console/pipelines' },
  { name: 'access', path: '/console/access' },
  { name: 'audit', path: '/console/audit' },
  { name: 'rack', path: '/console/rack' },
];

/** A page's path for this app and build. */
export function pagePath(p: ConsolePage, app: string, build = 1): string {
  return p.path.replaceAll('{app}', encodeURIComponent(app)).replaceAll('{build}', String(build));
}
