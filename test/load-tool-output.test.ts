import test from 'ava';
import { durationMs, logPercentiles, median, parseH2load, parseWrk } from '../scripts/lib/load-tool-output.js';

// Outputs captured from wrk 4.1.0 and h2load 1.52.0 (Debian bookworm), as bench:router reads them.

const WRK = `Running 8s test @ https://bench-router.test:35301/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   437.35us  805.55us   7.80ms   91.14%
    Req/Sec     9.44k     6.28k   19.80k    80.00%
  Latency Distribution
     50%  135.00us
     75%  368.00us
     90%    1.11ms
     99%    4.29ms
  9408 requests in 1.01s, 1.11MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:   9355.76
Transfer/sec:      1.11MB
`;

const H2LOAD = `starting benchmark...
spawning thread #0: 4 total client(s). Timing-based test with 0s of warm-up time and 2s of main duration for measurements.
TLS Protocol: TLSv1.3
Cipher: TLS_AES_256_GCM_SHA384
Server Temp Key: X25519 253 bits
Application protocol: h2
Main benchmark duration is over for thread #0. Stopping all clients.

finished in 2.00s, 2000.00 req/s, 132.94KB/s
requests: 4006 total, 4006 started, 4006 done, 4000 succeeded, 6 failed, 6 errored, 0 timeout
status codes: 3999 2xx, 0 3xx, 0 4xx, 1 5xx
traffic: 265.88KB (272264) total, 187.50KB (192000) headers (space savings 51.02%), 7.81KB (8000) data
                     min         max         mean         sd        +/- sd
time for request:      286us    168.51ms      7.88ms     10.37ms    95.90%
`;

/** What h2load says when the server offers no h2 (ALPN): nothing negotiated, nothing sent. */
const H2LOAD_NO_H2 = `starting benchmark...
spawning thread #0: 1 total client(s). 1 total requests

finished in 6.49ms, 0.00 req/s, 0B/s
requests: 1 total, 0 started, 0 done, 0 succeeded, 1 failed, 1 errored, 0 timeout
status codes: 0 2xx, 0 3xx, 0 4xx, 0 5xx
`;

test('durationMs reads wrk and h2load time units', (t) => {
  t.is(durationMs('135.00us'), 0.135);
  t.is(durationMs('4.29ms'), 4.29);
  t.is(durationMs('2.5s'), 2500);
  t.true(Number.isNaN(durationMs('fast')));
});

test('parseWrk reads requests, rate, p50, p99 and every kind of error', (t) => {
  t.deepEqual(parseWrk(WRK), { requests: 9408, rps: 9355.76, p50Ms: 0.135, p99Ms: 4.29, errors: 12 });
});

test('parseWrk refuses an output without a latency distribution', (t) => {
  t.throws(() => parseWrk('unable to connect to 127.0.0.1:1 Connection refused\n'), { message: /not the output of wrk --latency/ });
});

test('parseH2load reads the succeeded streams, the rate, failures and the negotiated protocol', (t) => {
  const f = parseH2load(H2LOAD);
  t.like(f, { requests: 4000, rps: 2000, errors: 7, protocol: 'h2' });
  t.true(Number.isNaN(f.p50Ms));
  const none = parseH2load(H2LOAD_NO_H2);
  t.like(none, { requests: 0, errors: 1 });
  t.is(none.protocol, undefined);
});

test('logPercentiles takes p50 and p99 of the answered streams of an h2load --log-file', (t) => {
  const rows = Array.from({ length: 100 }, (_, i) => `17965414289${String(i).padStart(5, '0')}\t200\t${(i + 1) * 1000}`);
  rows.push('1796541428999999\t-1\t1');
  const p = logPercentiles(`${rows.join('\n')}\n`);
  t.deepEqual(p, { count: 100, p50Ms: 50, p99Ms: 99 });
  t.true(Number.isNaN(logPercentiles('').p99Ms));
});

test('median of odd and even counts, NaN left out', (t) => {
  t.is(median([3, 1, 2]), 2);
  t.is(median([4, 1, 3, 2]), 2.5);
  t.is(median([Number.NaN, 5]), 5);
  t.true(Number.isNaN(median([])));
});
