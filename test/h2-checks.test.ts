import test from 'ava';
import { h2RequestHead } from '../daemon/router/h2-checks.js';
import { HeadError } from '../daemon/router/http1-head.js';

// The pure checks of an HTTP/2 header list and its HTTP/1.1 translation (h2-checks.ts).

const GET = [':method', 'GET', ':scheme', 'https', ':path', '/p?q=1', ':authority', 'shop.test:8443'];

test('a stream becomes the HTTP/1.1 head an app is sent: host first, cookies joined, te dropped, the body framed', (t) => {
  const req = h2RequestHead([...GET, 'cookie', 'a=1', 'accept', '*/*', 'cookie', 'b=2', 'te', 'trailers'], true);
  t.like(req, { method: 'GET', target: '/p?q=1', host: 'shop.test:8443', minor: 1, keepAlive: true, upgrade: undefined, expectsContinue: false });
  t.deepEqual(req.headers, ['host', 'shop.test:8443', 'accept', '*/*', 'cookie', 'a=1; b=2']);
  t.deepEqual(req.names, ['host', 'accept', 'cookie']);
  t.deepEqual(req.framing, { kind: 'length', length: 0 });

  const post = [':method', 'POST', ':scheme', 'https', ':path', '/', ':authority', 'shop.test'];
  t.deepEqual(h2RequestHead([...post, 'content-length', '12'], false).framing, { kind: 'length', length: 12 });
  // A body of unknown length goes to the app chunked.
  t.deepEqual(h2RequestHead(post, false).framing, { kind: 'chunked' });
  // An empty POST says its length, as an HTTP/1.1 client would.
  t.deepEqual(h2RequestHead(post, true).headers, ['host', 'shop.test', 'content-length', '0']);
  t.true(h2RequestHead([...post, 'expect', '100-continue', 'content-length', '3'], false).expectsContinue);
  // host alone names the site too (RFC 9113 §8.3.1), and agreeing with :authority is fine.
  t.is(h2RequestHead([':method', 'GET', ':scheme', 'https', ':path', '/', 'host', 'shop.test'], true).host, 'shop.test');
  t.deepEqual(h2RequestHead([...GET, 'host', 'SHOP.test'], true).headers, ['host', 'shop.test:8443']);
  t.is(h2RequestHead([':method', 'OPTIONS', ':scheme', 'https', ':path', '*', ':authority', 'shop.test'], true).target, '*');
});

test('malformed header lists are refused with 400 (431 when too large), each with its reason', (t) => {
  const cases: Array<[string, string[], boolean, RegExp]> = [
    ['duplicate :path', [...GET, ':path', '/admin'], true, /duplicate :path/],
    ['unknown pseudo', [...GET, ':foo', 'x'], true, /unknown pseudo-header/],
    ['pseudo after regular', [':method', 'GET', 'accept', '*/*', ':scheme', 'https', ':path', '/', ':authority', 'a'], true, /pseudo-header after/],
    ['no :method', GET.slice(2), true, /missing :method/],
    ['no :path', [':method', 'GET', ':scheme', 'https', ':authority', 'a'], true, /missing :scheme or :path/],
    ['no :authority', [':method', 'GET', ':scheme', 'https', ':path', '/'], true, /missing :authority/],
    ['CONNECT', [':method', 'CONNECT', ':authority', 'a:443'], true, /CONNECT is not served/],
    ['extended CONNECT', [':method', 'CONNECT', ':protocol', 'websocket', ':scheme', 'https', ':path', '/', ':authority', 'a'], true, /extended CONNECT/],
    ['http scheme', [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'a'], true, /:scheme is not https/],
    ['relative path', [':method', 'GET', ':scheme', 'https', ':path', 'admin', ':authority', 'a'], true, /invalid :path/],
    ['blank in path', [':method', 'GET', ':scheme', 'https', ':path', '/a b', ':authority', 'a'], true, /invalid :path/],
    ['bad method', [':method', 'G T', ':scheme', 'https', ':path', '/', ':authority', 'a'], true, /invalid :method/],
    ['userinfo', [':method', 'GET', ':scheme', 'https', ':path', '/', ':authority', 'u@a'], true, /invalid :authority/],
    ['authority and host disagree', [...GET, 'host', 'other.test'], true, /disagree/],
    ['two hosts', [...GET, 'host', 'shop.test', 'host', 'shop.test'], true, /more than one host/],
    ['upper case name', [...GET, 'X-A', '1'], true, /invalid header name/],
    ['blank in name', [...GET, 'x a', '1'], true, /invalid header name/],
    ['connection', [...GET, 'connection', 'close'], true, /connection-specific header connection/],
    ['transfer-encoding', [...GET, 'transfer-encoding', 'chunked'], false, /connection-specific header transfer-encoding/],
    ['keep-alive', [...GET, 'keep-alive', '1'], true, /connection-specific/],
    ['proxy-connection', [...GET, 'proxy-connection', '1'], true, /connection-specific/],
    ['upgrade', [...GET, 'upgrade', 'h2c'], true, /connection-specific/],
    ['te gzip', [...GET, 'te', 'gzip'], true, /te other than trailers/],
    ['LF in a value', [...GET, 'x-a', 'a\nb'], true, /invalid character in header x-a/],
    ['NUL in a value', [...GET, 'x-a', 'a\0b'], true, /invalid character/],
    ['leading blank', [...GET, 'x-a', ' a'], true, /invalid character/],
    ['bad content-length', [...GET, 'content-length', '1e3'], false, /invalid content-length/],
    ['two content-lengths', [...GET, 'content-length', '3', 'content-length', '4'], false, /conflicting content-length/],
    ['content-length with no body', [...GET, 'content-length', '3'], true, /content-length with no body/],
    ['odd list', [...GET, 'x-a'], true, /malformed header list/],
  ];
  for (const [what, raw, endStream, message] of cases) {
    const err = t.throws(() => h2RequestHead(raw, endStream), { instanceOf: HeadError }, what);
    t.is(err?.status, 400, what);
    t.regex(err?.message ?? '', message, what);
  }
  const big = t.throws(() => h2RequestHead([...GET, 'x-big', 'x'.repeat(17 * 1024)], true), { instanceOf: HeadError });
  t.is(big?.status, 431);
});
