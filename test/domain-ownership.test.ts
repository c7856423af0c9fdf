import test from 'ava';
import { assertDefaultHostFree, assertDomainClaim, domainsAgainstRule, type HostHolders } from '../daemon/domain-ownership.js';
import { isIpLiteral, parseHostName } from '../daemon/host-name.js';
import { RackError } from '../daemon/rack-error.js';

// The one rule of who may hold a host name, as a pure function: the attacks of issue 27 (an
// app-scoped key for `evil` against app `victim`) and the names an app may still add.
const holders = (domain = 'localhost', consoleHost = `rack.${domain}`): HostHolders => ({
  domain,
  consoleHost,
  apps: [
    { name: 'victim', domains: ['www.victim.test'] },
    { name: 'evil', domains: ['evil.test'] },
    { name: 'blog' },
  ],
});

function refusal(host: string, app = 'evil', h = holders()): { code: string; message: string } | undefined {
  try {
    assertDomainClaim(parseHostName(host), app, h);
    return undefined;
  } catch (err) {
    if (!(err instanceof RackError)) throw err;
    return { code: err.code, message: err.message };
  }
}

test('refused: the console host, anything under it and above it', (t) => {
  t.like(refusal('rack.localhost'), { code: 'domain_reserved', message: "rack.localhost is rack's own host name (RACK_CONSOLE_HOST)" });
  t.like(refusal('x.rack.localhost'), { code: 'domain_reserved' });
  t.regex(refusal('a.b.rack.localhost')!.message, /is under rack's own host name rack\.localhost/);
  const custom = holders('apps.example.com', 'console.example.com');
  t.like(refusal('x.console.example.com', 'evil', custom), { code: 'domain_reserved' });
  t.like(refusal('example.com', 'evil', custom), { code: 'domain_reserved' });
});

test('refused: RACK_DOMAIN and every parent of it', (t) => {
  t.like(refusal('apps.example.com', 'evil', holders('apps.example.com')), { code: 'domain_reserved', message: 'apps.example.com is RACK_DOMAIN (apps.example.com), under which every app has its default host' });
  t.like(refusal('example.com', 'evil', holders('apps.example.com')), { code: 'domain_reserved' });
  // One label is no host name at all (`localhost`, `com`).
  for (const host of ['localhost', 'com']) t.like(refusal(host, 'evil', holders('apps.example.com')), { code: 'bad_argument' });
});

test("refused: another app's default host and anything under it, and names under RACK_DOMAIN not under the app's own", (t) => {
  t.like(refusal('victim.localhost'), { code: 'domain_taken', message: 'victim.localhost is the default host of app victim' });
  t.like(refusal('x.victim.localhost'), { code: 'domain_taken', message: 'x.victim.localhost is under the default host of app victim' });
  // No app called `later` yet: its default host is kept for it.
  t.like(refusal('x.later.localhost'), { code: 'domain_reserved' });
  t.like(refusal('later.localhost'), { code: 'domain_reserved' });
  t.like(refusal('evil.localhost'), { code: 'bad_argument', message: "evil.localhost is already evil's default host" });
});

test("refused: another app's custom domain, anything under it and anything above it", (t) => {
  t.like(refusal('www.victim.test'), { code: 'domain_taken', message: 'www.victim.test already belongs to another app (victim)' });
  t.like(refusal('admin.www.victim.test'), { code: 'domain_taken' });
  t.regex(refusal('admin.www.victim.test')!.message, /is under www\.victim\.test, a domain of another app \(victim\)/);
  t.regex(refusal('victim.test')!.message, /is above www\.victim\.test, a domain of another app \(victim\)/);
});

test('refused: IP literals in every form a browser reads as one', (t) => {
  for (const host of ['127.0.0.1', '127.1', '0x7f.0.0.1', '0177.0.0.1', '2130706433', '10.0.0.0x1', 'foo.0x', 'foo.123', '[::1]', '::1', '[::ffff:127.0.0.1]', '127.0.0.1.']) {
    t.like(refusal(host), { code: 'domain_reserved' }, host);
    t.regex(refusal(host)!.message, /is an IP address/, host);
  }
  t.true(isIpLiteral('1.2.3.4'));
  t.false(isIpLiteral('123.example.com'));
  t.false(isIpLiteral('0xdeadbeef.com'));
});

test('allowed: names under the app\'s own hosts, and unrelated names', (t) => {
  t.is(refusal('api.evil.localhost'), undefined);
  t.is(refusal('a.b.evil.localhost'), undefined);
  t.is(refusal('www.evil.test'), undefined);
  t.is(refusal('shop.example.org'), undefined);
  t.is(refusal('123.example.com'), undefined);
  t.is(refusal('WWW.Other.TEST.'), undefined);
  t.like(refusal('evil.test'), { code: 'bad_argument', message: 'evil.test is already a domain of evil' });
  // The victim may add names under its own custom domain.
  t.is(refusal('admin.www.victim.test', 'victim'), undefined);
});

test("a new app's default host may not share cookies with the console's or another app's domain", (t) => {
  const custom = holders('apps.example.com', 'console.apps.example.com');
  t.throws(() => assertDefaultHostFree('console', custom), { instanceOf: RackError, message: /console\.apps\.example\.com, which is rack's own host name/ });
  t.throws(() => assertDefaultHostFree('shop', holders('apps.example.com', 'x.shop.apps.example.com')), { message: /is above rack's own host name/ });
  // A domain added under RACK_DOMAIN before such names were refused keeps its app's name space.
  const legacy = { ...holders(), apps: [{ name: 'evil', domains: ['x.newapp.localhost'] }] };
  t.throws(() => assertDefaultHostFree('newapp', legacy), { message: /shares cookies with x\.newapp\.localhost, a domain of app evil/ });
  t.notThrows(() => assertDefaultHostFree('shop', holders()));
});

test('domains added before the rule are found, each with its refusal; lawful ones are not', (t) => {
  const found = domainsAgainstRule({
    domain: 'localhost',
    consoleHost: 'rack.localhost',
    apps: [
      { name: 'victim', domains: ['www.victim.test', 'admin.www.victim.test'] },
      { name: 'evil', domains: ['x.rack.localhost', 'x.victim.localhost', 'a.www.victim.test', '127.0.0.1', 'api.evil.localhost', 'evil.test'] },
    ],
  });
  t.deepEqual(found.map((f) => `${f.app} ${f.host}`), ['victim www.victim.test', 'evil x.rack.localhost', 'evil x.victim.localhost', 'evil a.www.victim.test', 'evil 127.0.0.1']);
  t.regex(found.find((f) => f.host === 'x.rack.localhost')!.reason, /under rack's own host name/);
});
