/**
 * What the deploy benchmarks share: a host already busy with other apps (the cost of a rollout
 * grows with what else the engine runs), and the per-phase timings rack prints after a rollout
 * (`-----> Timings: start 0.31 s · healthy 0.20 s · ... · total 0.74 s`), gathered per round so a
 * change is measured in the phase where it lands.
 */
import PQueue from 'p-queue';
import { PHASES } from '../daemon/phase-timings.js';
import { commitFile, type RackDaemon } from '../test/support/rack-daemon.js';

/** `--others N` anywhere in argv; 20 unless given. */
export function othersArg(argv: readonly string[], fallback = 20): number {
  const i = argv.indexOf('--others');
  if (i === -1) return fallback;
  const n = Number(argv[i + 1]);
  if (!Number.isInteger(n) || n < 0) throw new Error('--others takes a whole number, e.g. --others 20');
  return n;
}

/** argv without `--others N`, for the positional arguments. */
export function positional(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--others') i++;
    else out.push(argv[i]!);
  }
  return out;
}

/**
 * Deploys `count` small Node apps and checks each answers, so the benchmark's own app shares the
 * engine with that many running containers (and their networks and published ports).
 */
export async function runOtherApps(rack: RackDaemon, count: number): Promise<void> {
  if (count === 0) return;
  const t0 = performance.now();
  const queue = new PQueue({ concurrency: 4 });
  const apps = Array.from({ length: count }, (_, i) => `other-${String(i + 1).padStart(2, '0')}`);
  await Promise.all(
    apps.map((app) =>
      queue.add(async () => {
        const dir = await rack.appRepo('node-hello', app);
        await commitFile(dir, 'server.js', `require('http').createServer((q, s) => s.end('${app}')).listen(process.env.PORT);\n`, app);
        const r = await rack.push(dir);
        if (r.code !== 0) throw new Error(`push of ${app} failed:\n${r.stderr}`);
        const answer = await rack.get(app);
        if (answer.body !== app) throw new Error(`${app} answered ${answer.status} ${answer.body.slice(0, 80)}`);
      }),
    ),
  );
  console.log(`${count} other apps running (deployed in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

export type PhaseFigures = Partial<Record<(typeof PHASES)[number] | 'total', number>>;

/** The last `Timings:` line in a command's output, in ms per phase; empty when there is none. */
export function parseTimings(output: string): PhaseFigures {
  const line = output
    .split('\n')
    .filter((l) => l.includes('Timings:'))
    .at(-1);
  const out: PhaseFigures = {};
  if (line === undefined) return out;
  for (const m of line.matchAll(/([a-z]+) (\d+\.\d+) s/g)) {
    const name = m[1] as keyof PhaseFigures;
    if ((PHASES as readonly string[]).includes(name) || name === 'total') out[name] = Number(m[2]) * 1000;
  }
  return out;
}

export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
export const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

/** `start 0.31 s · healthy 0.20 s · ...`: the median of each phase over the rounds that reported it. */
export function medianPhases(rounds: readonly PhaseFigures[]): string {
  const parts: string[] = [];
  for (const phase of [...PHASES, 'total'] as const) {
    const xs = rounds.map((r) => r[phase]).filter((x): x is number => x !== undefined);
    if (xs.length > 0) parts.push(`${phase} ${secs(median(xs))}`);
  }
  return parts.length > 0 ? parts.join(' · ') : 'no timings printed';
}

/** A one-line Node server answering `marker`: each push deploys a new one. */
export const markerServer = (marker: string) => `require('http').createServer((q, s) => s.end('${marker}')).listen(process.env.PORT);\n`;

/**
 * Commits a server answering `marker`, pushes it, and polls the app through the router until the
 * new release answers: ms from the push to then, and the phases rack printed.
 */
export async function pushToAnswering(rack: RackDaemon, dir: string, app: string, marker: string, timeoutMs = 120_000): Promise<{ ms: number; phases: PhaseFigures }> {
  await commitFile(dir, 'server.js', markerServer(marker), marker);
  const t0 = performance.now();
  const result = await rack.push(dir);
  if (result.code !== 0) throw new Error(`push failed:\n${result.stderr}`);
  for (;;) {
    const res = await rack.get(app).catch(() => ({ status: 0, body: '' }));
    if (res.body === marker) return { ms: performance.now() - t0, phases: parseTimings(result.stdout + result.stderr) };
    if (performance.now() - t0 > timeoutMs) throw new Error('the new release never answered');
  }
}
