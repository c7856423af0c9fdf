import test from 'ava';
import { BodyFramer } from '../daemon/router/body-framer.js';
import { headEnd, HeadError, MAX_HEAD_BYTES, parseRequestHead, parseResponseHead } from '../daemon/router/http1-head.js';

// The router's own HTTP/1.1 reading: pure functions, checked on the shapes request smuggling uses.

function request(text: string) {
  const buf = Buffer.from(text, 'latin1');
  const end = headEnd(buf, 'request');
  if (end === -1) throw new Error('incomplete head');
  return parseRequestHead(buf, end);
}

function response(text: string, method = 'GET') {
  const buf = Buffer.from(text, 'latin1');
  return parseResponseHead(buf, headEnd(buf, 'response'), method);
}

function refused(t: import('ava').ExecutionContext, text: string, status: number, message: RegExp): void {
  const err = t.throws(() => request(text), { instanceOf: HeadError });
  t.is(err?.status, status, text);
  t.regex(err?.message ?? '', message, text);
}

test('a request head: method, target, Host, framing and keep-alive', (t) => {
  const r = request('POST /a?b=1 HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\nX-Thing:  two  words \r\n\r\nhello');
  t.is(r.method, 'POST');
  t.is(r.target, '/a?b=1');
  t.is(r.host, 'shop.test');
  t.deepEqual(r.framing, { kind: 'length', length: 5 });
  t.true(r.keepAlive);
  t.deepEqual(r.headers, ['Host', 'shop.test', 'Content-Length', '5', 'X-Thing', 'two  words']);
  t.false(request('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n').keepAlive);
  t.false(request('GET / HTTP/1.0\r\n\r\n').keepAlive);
  t.true(request('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n').keepAlive);
  t.deepEqual(request('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n').framing, { kind: 'chunked' });
  // The same length twice is one length (RFC 9110 §8.6).
  t.deepEqual(request('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n').framing, { kind: 'length', length: 3 });
  t.is(request('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n').upgrade, 'websocket');
  t.is(request('GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n').upgrade, undefined);
  t.true(request('PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 100-Continue\r\n\r\n').expectsContinue);
  t.false(request('PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n').expectsContinue);
});

test('request heads two parsers could read two ways are refused', (t) => {
  refused(t, 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n', 400, /both/);
  refused(t, 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n', 400, /conflicting/);
  refused(t, 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 5\r\n\r\n', 400, /conflicting/);
  refused(t, 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n', 400, /Content-Length/);
  refused(t, 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n', 400, /Content-Length/);
  refused(t, 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n', 400, /Transfer-Encoding/);
  refused(t, 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n', 400, /twice/);
  refused(t, 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 400, /HTTP\/1.0/);
  refused(t, 'GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n\r\n', 400, /folded/);
  refused(t, 'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n', 400, /header name/);
  refused(t, 'GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\nTransfer-Encoding: chunked\r\n\r\n', 400, /character/);
  refused(t, 'GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n', 400, /character/);
  refused(t, 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400, /Host/);
  refused(t, 'GET / HTTP/1.1\r\nX-A: 1\r\n\r\n', 400, /Host/);
  refused(t, 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n', 400, /request line/);
  refused(t, 'GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n', 400, /target/);
  refused(t, 'G(T / HTTP/1.1\r\nHost: a\r\n\r\n', 400, /method/);
  refused(t, 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', 505, /version/);
  refused(t, 'GET / HTTP/1.1\r\n: empty\r\n\r\n', 400, /malformed/);
});

test('a head larger than 16 KiB is refused before it is whole', (t) => {
  const big = Buffer.from(`GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(MAX_HEAD_BYTES)}`, 'latin1');
  t.is(t.throws(() => headEnd(big, 'request'), { instanceOf: HeadError })?.status, 431);
  t.is(headEnd(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n'), 'request'), -1);
});

test('a response is delimited by its request and status as RFC 9112 §6.3 says', (t) => {
  t.deepEqual(response('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n').framing, { kind: 'length', length: 2 });
  t.deepEqual(response('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n', 'HEAD').framing, { kind: 'length', length: 0 });
  t.deepEqual(response('HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n').framing, { kind: 'length', length: 0 });
  t.deepEqual(response('HTTP/1.1 304 Not Modified\r\n\r\n').framing, { kind: 'length', length: 0 });
  t.deepEqual(response('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n').framing, { kind: 'chunked' });
  const untold = response('HTTP/1.1 200 OK\r\n\r\n');
  t.deepEqual(untold.framing, { kind: 'close' });
  t.false(untold.keepAlive);
  const r = response('HTTP/1.1 404 Not Here\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  t.is(r.status, 404);
  t.is(r.reason, 'Not Here');
  t.false(r.keepAlive);
  t.is(response('HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n').reason, '');
  t.is(t.throws(() => response('HTTP/1.1 2000 OK\r\n\r\n'), { instanceOf: HeadError })?.status, 502);
  t.is(t.throws(() => response('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'), { instanceOf: HeadError })?.status, 502);
});

/** Feeds `bytes` to a framer `step` bytes at a time; returns how many it took before it was done. */
function frame(framer: BodyFramer, bytes: Buffer, step: number): number {
  let taken = 0;
  for (let i = 0; i < bytes.length && !framer.done; i += step) {
    const piece = bytes.subarray(i, Math.min(bytes.length, i + step));
    const n = framer.take(piece, 0);
    taken += n;
    if (n < piece.length) break;
  }
  return taken;
}

test('a chunked body is followed to its end over any split, trailers included, and no further', (t) => {
  const body = Buffer.from('5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Sum: 9\r\n\r\n', 'latin1');
  const next = Buffer.from('GET / HTTP/1.1\r\n', 'latin1');
  const bytes = Buffer.concat([body, next]);
  for (const step of [1, 2, 7, bytes.length]) {
    const framer = new BodyFramer({ kind: 'chunked' }, 400);
    t.is(frame(framer, bytes, step), body.length, `step ${step}`);
    t.true(framer.done);
  }
  const length = new BodyFramer({ kind: 'length', length: 3 }, 400);
  t.is(length.take(Buffer.from('abcdef'), 1), 3);
  t.true(length.done);
  t.true(new BodyFramer({ kind: 'length', length: 0 }, 400).done);
});

test('a malformed chunked body is an error with the side’s status, never a guess', (t) => {
  for (const bad of ['x\r\n', '5\r\nhello0\r\n\r\n', '5\nhello\r\n', '-1\r\n', `${'f'.repeat(13)}\r\n`, '0\r\nX: 1\n\r\n']) {
    const framer = new BodyFramer({ kind: 'chunked' }, 400);
    const err = t.throws(() => frame(framer, Buffer.from(bad, 'latin1'), 1), { instanceOf: HeadError }, JSON.stringify(bad));
    t.is(err?.status, 400);
  }
  const upstream = new BodyFramer({ kind: 'chunked' }, 502);
  t.is(t.throws(() => upstream.take(Buffer.from('zz\r\n'), 0), { instanceOf: HeadError })?.status, 502);
});
