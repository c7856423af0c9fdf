/**
 * Every Console page, for the accessibility check (axe-core) and the screenshots: a path under
 * the console for an app `APP` (replaced by the test's app) or for the rack. Each helper adds the
 * pages of its area here.
 */
export interface ConsolePage {
  name: string;
  path: string;
}

export const CONSOLE_PAGES: ConsolePage[] = [
  { name: 'overview', path: '/console/apps/APP/' },
  { name: 'overview-7d', path: '/console/apps/APP/?range=7d' },
  { name: 'metrics', path: '/console/apps/APP/metrics' },
  { name: 'metrics-24h', path: '/console/apps/APP/metrics?range=24h' },
  { name: 'addons', path: '/console/apps/APP/addons' },
  { name: 'domains', path: '/console/apps/APP/domains' },
  { name: 'logs-search', path: '/console/apps/APP/logs?since=1h&grep=GET' },
];

export const pagePath = (p: ConsolePage, app: string): string => p.path.replace('APP', encodeURIComponent(app));
