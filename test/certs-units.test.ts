import test from 'ava';
import { backoffMs, renewalTime } from '../daemon/certs/auto-certificates.js';
import { checkBundle, nameCovers } from '../daemon/certs/certificate-check.js';
import { joinPem, splitPem } from '../daemon/pem-bundle.js';
import { loadConfig } from '../daemon/config.js';
import { TestCa } from './support/test-certs.js';

// The pure parts of HTTPS: what a certificate covers, when it renews, how long a failure waits,
// how a bundle is read and checked (real certificates, made for the test).

test('a wildcard covers exactly one leftmost label', (t) => {
  t.true(nameCovers('shop.example.com', 'shop.example.com'));
  t.true(nameCovers('*.example.com', 'shop.example.com'));
  t.false(nameCovers('*.example.com', 'example.com'));
  t.false(nameCovers('*.example.com', 'a.shop.example.com'));
  t.false(nameCovers('*.example.com', '.example.com'));
  t.false(nameCovers('shop.example.com', 'www.shop.example.com'));
});

test('renewal starts with a third of the lifetime left; failures back off, rate limits for an hour at least', (t) => {
  const at = renewalTime({ notBefore: '2027-01-01T00:00:00Z', notAfter: '2027-04-01T00:00:00Z' });
  t.is(at.toISOString(), '2027-03-02T00:00:00.000Z');
  const short = renewalTime({ notBefore: '2027-01-01T00:00:00Z', notAfter: '2027-01-01T00:00:45Z' });
  t.is(short.toISOString(), '2027-01-01T00:00:30.000Z');
  t.deepEqual([1, 2, 3, 4].map((n) => backoffMs(n, false) / 60_000), [1, 2, 4, 8]);
  t.is(backoffMs(40, false), 24 * 3_600_000);
  t.is(backoffMs(1, true), 3_600_000);
});

test('a PEM bundle splits into its certificates and one key, whatever surrounds them', async (t) => {
  const ca = await TestCa.create();
  const leaf = await ca.leaf({ names: ['shop.test'] });
  const text = `subject=CN=shop.test\r\n${leaf.cert.replace(/\n/g, '\r\n')}junk\n${ca.ca.cert}${leaf.key}`;
  const bundle = splitPem(text);
  t.is(bundle.certificates.length, 2);
  t.is(bundle.otherKeys, 0);
  t.truthy(bundle.key);
  t.is(joinPem({ certificates: bundle.certificates, key: bundle.key! }), leaf.cert + ca.ca.cert + leaf.key);
  t.is(splitPem(leaf.key + leaf.key).otherKeys, 1);
});

test('checkBundle accepts a good chain and names the reason for each bad one', async (t) => {
  const ca = await TestCa.create();
  const other = await TestCa.create('other');
  const leaf = await ca.leaf({ names: ['shop.test', '*.shop.test'] });
  const ok = checkBundle(leaf.cert + ca.ca.cert + leaf.key, 'www.shop.test');
  t.deepEqual(ok.info.names, ['shop.test', '*.shop.test']);
  t.is(ok.certificates.length, 2);
  const future = await ca.leaf({ names: ['shop.test'], fromDays: 2, toDays: 30 });
  const bad: Array<[string, RegExp]> = [
    [leaf.cert + (await ca.key()), /does not match/],
    [leaf.cert + other.ca.cert + leaf.key, /chain is broken/],
    [future.cert + future.key, /not valid before/],
    [leaf.cert, /no private key/],
    [leaf.key, /no certificate/],
    [leaf.cert + leaf.key + leaf.key, /more than one private key/],
    ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' + leaf.key, /not a readable X.509/],
    [leaf.cert + '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', /private key is not readable/],
    ['x'.repeat(70 * 1024), /larger than 64 KB/],
  ];
  for (const [text, reason] of bad) t.throws(() => checkBundle(text, 'shop.test'), { message: reason });
  t.throws(() => checkBundle(leaf.cert + leaf.key, 'a.b.shop.test'), { message: /does not cover a.b.shop.test \(it names shop.test, \*.shop.test\)/ });
});

test('HTTPS settings: a port or off, an https ACME directory, an email', (t) => {
  const base = { RACK_HOME: '/tmp/x' };
  t.is(loadConfig(base, '').httpsPort, 8443);
  t.is(loadConfig({ ...base, RACK_HTTPS_PORT: 'off' }, '').httpsPort, undefined);
  t.regex(loadConfig(base, '').acmeDirectory, /^https:\/\//);
  t.throws(() => loadConfig({ ...base, RACK_ACME_DIRECTORY: 'http://ca.example.com/dir' }, ''), { message: /RACK_ACME_DIRECTORY must be an https:\/\/ URL/ });
  t.throws(() => loadConfig({ ...base, RACK_ACME_EMAIL: 'not an email' }, ''), { message: /RACK_ACME_EMAIL must be an email address/ });
  t.throws(() => loadConfig({ ...base, RACK_HTTPS_PORT: '99999' }, ''), { message: /RACK_HTTPS_PORT must be a TCP port/ });
});
