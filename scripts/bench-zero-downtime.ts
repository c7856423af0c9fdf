/**
 * Zero-downtime deploys under load: 16 keep-alive clients hit a small Node app through rack's
 * router while it gets 5 `config:set`, one `releases:rollback` and one `git push`; every failed
 * request (5xx or network error) is counted, with its reason and the operation it happened in.
 * A 5 s baseline with no changes gives the latencies a reference from the same run, and a last
 * part measures a `rackd` restart (stop + start on the same ports) under the same load.
 * Against a real rackd, ssh, git and Docker. Failures do not change the exit code: it measures.
 *   npm run build && node dist/scripts/bench-zero-downtime.js [clients]
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { commitFile, RackDaemon } from '../test/support/rack-daemon.js';
import { formatReport, ms, startLoad, type FailureEvent, type LoadReport, type LoadRun } from './load-generator.js';

const clients = Number(process.argv[2] ?? 16);
const app = 'bench-zd';
const host = `${app}.localhost`;
const BASELINE_MS = 5_000;
const ANSWER_DEADLINE_MS = 120_000;
const PAUSE_AFTER_ERROR_MS = 10;

const sleep = (t: number) => new Promise<void>((r) => setTimeout(r, t));
const secs = (t: number) => `${(t / 1000).toFixed(2)} s`;

interface Op {
  name: string;
  /** On the load run's clock. */
  start: number;
  /** The ssh command / git push returned. */
  commandMs: number;
  /** The change answered through the router (polled on fresh connections). */
  answeringMs: number;
}

/** Polls through the router on fresh connections until `path` answers 200 with `body`. */
async function until(rack: RackDaemon, path: string, body: string, t0: number): Promise<number> {
  for (;;) {
    const res = await rack.get(app, path).catch(() => ({ status: 0, body: '' }));
    if (res.status === 200 && res.body === body) return performance.now() - t0;
    if (performance.now() - t0 > ANSWER_DEADLINE_MS) throw new Error(`${path} never answered ${JSON.stringify(body)}`);
    await sleep(10);
  }
}

/** rackd's own log (pino JSON lines) since `from`: router and warning/error messages, tallied. */
function daemonLog(rack: RackDaemon, from: number): string[] {
  const tally = new Map<string, number>();
  for (const line of rack.output.slice(from).split('\n')) {
    if (!line.startsWith('{')) continue;
    let entry: { level?: number; msg?: string; code?: unknown; err?: unknown; upstream?: unknown };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue;
    }
    const msg = entry.msg ?? '';
    if (!msg.startsWith('router:') && (entry.level ?? 0) < 40) continue;
    const detail = entry.code !== undefined ? ` [${String(entry.code)}]` : typeof entry.err === 'string' ? ` [${entry.err.slice(0, 80)}]` : '';
    const key = `${(entry.level ?? 0) >= 40 ? 'WARN ' : 'info '}${msg}${detail}`;
    tally.set(key, (tally.get(key) ?? 0) + 1);
  }
  return [...tally].sort((a, b) => b[1] - a[1]).map(([k, n]) => `  ${String(n).padStart(7)} × ${k}`);
}

/** Failures grouped by the operation under way when they happened, with the first time of each reason. */
function attribute(failures: FailureEvent[], ops: Op[], endOfOps: number): string[] {
  const buckets = new Map<string, Map<string, { n: number; first: number }>>();
  for (const f of failures) {
    let bucket = 'before the first operation';
    for (const o of ops) if (f.at >= o.start) bucket = `from ${o.name}`;
    if (f.at >= endOfOps) bucket = 'after the last change answered';
    const reasons = buckets.get(bucket) ?? new Map<string, { n: number; first: number }>();
    const seen = reasons.get(f.reason);
    reasons.set(f.reason, { n: (seen?.n ?? 0) + 1, first: seen?.first ?? f.at });
    buckets.set(bucket, reasons);
  }
  const out: string[] = [];
  for (const [bucket, reasons] of buckets) {
    out.push(`    ${bucket}:`);
    for (const [reason, { n, first }] of reasons) out.push(`      ${String(n).padStart(6)} × ${reason} (first at +${secs(first)})`);
  }
  return out;
}

function failureWindow(r: LoadReport): string {
  if (r.failures.length === 0) return 'failures: none';
  const first = r.failures[0]!.at;
  const last = r.failures[r.failures.length - 1]!.at;
  return `failures from +${secs(first)} to +${secs(last)} (${secs(last - first)})`;
}

const rack = await RackDaemon.create();
let load: LoadRun | undefined;
const cleanup = async () => {
  await load?.stop().catch(() => undefined);
  await rack.destroy();
};
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`\n${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

try {
  // --- deploy the app ---------------------------------------------------------------------------
  const dir = await rack.appRepo('node-env', app);
  let t = performance.now();
  const first = await rack.push(dir);
  if (first.code !== 0) throw new Error(`first push failed:\n${first.stderr}`);
  await until(rack, '/', 'build-one', t);
  console.log(`deployed ${app} (first push → answering ${secs(performance.now() - t)}), router on 127.0.0.1:${rack.httpPort}`);
  const target = { url: `http://127.0.0.1:${rack.httpPort}/`, host, connections: clients, pauseAfterErrorMs: PAUSE_AFTER_ERROR_MS };

  // --- baseline: same load, nothing changes -----------------------------------------------------
  await startLoad({ ...target, durationMs: 1_000 }).done; // warm-up, discarded
  const baseline = await startLoad({ ...target, durationMs: BASELINE_MS }).done;

  // --- the same load across 5 config:set + a rollback + a push ----------------------------------
  const ops: Op[] = [];
  const logFrom = rack.output.length;
  load = startLoad({ ...target, maxDurationMs: 5 * 60_000 });
  await sleep(1_000);
  const op = async (name: string, command: () => Promise<{ code: number; stderr: string }>, path: string, body: string) => {
    const start = load!.now();
    const t0 = performance.now();
    const r = await command();
    const commandMs = performance.now() - t0;
    if (r.code !== 0) throw new Error(`${name} failed:\n${r.stderr}`);
    const answeringMs = await until(rack, path, body, t0);
    ops.push({ name, start, commandMs, answeringMs });
  };
  const configs = 5;
  for (let i = 0; i < configs; i++) {
    await op(`config:set N=${i}`, () => rack.ssh(['config:set', `N=${i}`, '-a', app]), '/env/N', String(i));
  }
  // Rolls back to the release before the current one: the one made by config:set N=configs-2.
  await op('releases:rollback', () => rack.ssh(['releases:rollback', '-a', app]), '/env/N', String(configs - 2));
  const source = (await readFile(join(dir, 'server.js'), 'utf8')).replace("'build-one'", "'build-two'");
  await commitFile(dir, 'server.js', source, 'two');
  await op('git push', () => rack.push(dir), '/', 'build-two');
  const endOfOps = load.now();
  await sleep(1_000);
  const changes = await load.stop();
  load = undefined;
  const changeLog = daemonLog(rack, logFrom);

  // --- rackd restart under load -------------------------------------------------------------------
  const restartLogFrom = rack.output.length;
  load = startLoad({ ...target, maxDurationMs: 5 * 60_000 });
  await sleep(1_000);
  const restartAt = load.now();
  t = performance.now();
  await rack.stop();
  const stopMs = performance.now() - t;
  t = performance.now();
  await rack.start({
    RACK_HTTP_PORT: String(rack.httpPort),
    RACK_SSH_PORT: String(rack.sshPort),
    RACK_ADMIN_KEYS: join(dirname(rack.home), 'admin_keys'),
  });
  const startMs = performance.now() - t;
  const backMs = await until(rack, '/', 'build-two', t);
  await sleep(1_000);
  const restart = await load.stop();
  load = undefined;
  const restartLog = daemonLog(rack, restartLogFrom);

  // --- report -----------------------------------------------------------------------------------
  console.log(`\n${clients} keep-alive clients → http://127.0.0.1:${rack.httpPort}/ (Host: ${host})\n`);
  console.log(formatReport(baseline, `baseline, no changes`));
  console.log('');
  console.log(formatReport(changes, `during ${configs} config:set + rollback + push`));
  console.log(`  ${failureWindow(changes)}`);
  console.log(`  p99 against baseline: ${ms(changes.latency.p99)} vs ${ms(baseline.latency.p99)} (+${ms(changes.latency.p99 - baseline.latency.p99)})`);
  console.log('  operations (load clock; command returned → change answering through the router):');
  for (const o of ops) {
    console.log(`    +${secs(o.start).padStart(8)}  ${o.name.padEnd(18)} command ${secs(o.commandMs)}, answering ${secs(o.answeringMs)}`);
  }
  if (changes.failures.length) {
    console.log('  failures by operation:');
    for (const line of attribute(changes.failures, ops, endOfOps)) console.log(line);
  }
  if (changeLog.length) console.log(['  rackd router log / warnings during the run:', ...changeLog].join('\n'));
  console.log(`FAILED REQUESTS: ${changes.failed}` + (changes.clientErrors ? ` (plus ${changes.clientErrors} 4xx answers)` : ''));
  console.log('');
  console.log(formatReport(restart, 'across a rackd restart (stop + start, same ports)'));
  console.log(`  restart at +${secs(restartAt)}: stop took ${secs(stopMs)}, start (ports bound) ${secs(startMs)}, app answering again ${secs(backMs)} after start began`);
  console.log(`  ${failureWindow(restart)}; a client waits ${PAUSE_AFTER_ERROR_MS} ms after a network error, so the count scales with that`);
  if (restartLog.length) console.log(['  rackd router log / warnings:', ...restartLog].join('\n'));
  console.log(`FAILED REQUESTS ACROSS RACKD RESTART: ${restart.failed}` + (restart.clientErrors ? ` (plus ${restart.clientErrors} 4xx answers)` : ''));
  console.log(`goal (DESIGN §6): 0 failed requests in both; p99 during changes near the baseline's`);
} finally {
  await cleanup();
}
