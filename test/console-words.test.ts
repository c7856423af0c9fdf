import test from 'ava';
import type { Principal } from '../daemon/access/principal.js';
import { sentence } from '../daemon/console/console-action.js';
import { APP_TABS, mayRun, relativeTime, timeAgo } from '../daemon/console/layout-view.js';

const now = Date.parse('2026-12-06T12:00:00.000Z');
const before = (ms: number) => new Date(now - ms).toISOString();

test('relative times: the largest whole unit, past and future', (t) => {
  t.is(relativeTime(before(10_000), now), 'just now');
  t.is(relativeTime(before(3 * 60_000), now), '3 min ago');
  t.is(relativeTime(before(60 * 60_000), now), '1 hour ago');
  t.is(relativeTime(before(5 * 3600_000), now), '5 hours ago');
  t.is(relativeTime(before(2 * 86_400_000), now), '2 days ago');
  t.is(relativeTime(new Date(now + 30 * 86_400_000).toISOString(), now), 'in 30 days');
  t.is(relativeTime(before(400 * 86_400_000), now), '2025-11-01');
  t.is(relativeTime('not a time', now), '-');
});

test('a time element carries the exact time as its title', (t) => {
  t.is(String(timeAgo(before(3 * 60_000), now)), '<time datetime="2026-12-06T11:57:00.000Z" title="2026-12-06 11:57:00Z">3 min ago</time>');
  t.is(timeAgo(null, now), '-');
});

test('a failure message ends as a sentence before the next one', (t) => {
  t.is(sentence('v5 failed its health check: web: no answer'), 'v5 failed its health check: web: no answer.');
  t.is(sentence('already a sentence.'), 'already a sentence.');
});

test("tabs shown: a deploy-only principal sees only the tabs whose command it may run", (t) => {
  const deploy: Principal = { kind: 'token', name: 'ci', role: 'deploy', apps: ['shop'] };
  const member: Principal = { kind: 'token', name: 'dev', role: 'app', apps: ['shop'] };
  const shown = (p: Principal) => APP_TABS.filter((tab) => mayRun(p, 'shop', tab.needs)).map((tab) => tab.tab);
  // The Overview leaves out what it may not read; Add-ons explains what it may not change.
  t.deepEqual(shown(deploy), ['overview', 'releases', 'builds', 'deploys', 'environment', 'cron', 'logs', 'addons']);
  t.deepEqual(shown(member), APP_TABS.map((tab) => tab.tab));
  t.deepEqual(shown({ ...member, apps: ['other'] }).filter((tab) => tab !== 'environment'), []);
});
