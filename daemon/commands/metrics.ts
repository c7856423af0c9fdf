import { combinePoints, downsample, metricRow, RESOLUTIONS, stepFor, type MetricRow } from '../metrics/metric-points.js';
import { RackError } from '../rack-error.js';
import { table, type Command } from './command.js';

const TYPE = /^[A-Za-z0-9_-]{1,30}$/;
const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const MAX_SINCE_MS = 7 * 86_400_000;
const MAX_POINTS = 10_000;

/** `--since 90s|30m|1h|7d` → ms; at most the week metrics are kept. */
export function parseSince(text: string): number {
  const m = /^([1-9][0-9]{0,5})([smhd])$/.exec(text);
  const ms = m === null ? undefined : Number(m[1]) * (UNITS[m[2] ?? ''] ?? 0);
  if (ms === undefined || ms > MAX_SINCE_MS) throw new RackError('bad_argument', `--since takes a duration like 30m, 1h or 7d (at most 7d), got ${JSON.stringify(text.slice(0, 20))}`);
  return ms;
}

const ms = (v: number | null): string => (v === null ? '-' : v >= 1000 ? `${(v / 1000).toFixed(1)}s` : `${v < 10 ? v.toFixed(1) : Math.round(v)}ms`);
const mb = (v: number | null): string => (v === null ? '-' : `${(v / (1024 * 1024)).toFixed(1)}MB`);
const time = (iso: string): string => iso.slice(5, 16).replace('T', ' ') + (iso.slice(17, 19) === '00' ? '' : `:${iso.slice(17, 19)}`);

function line(r: MetricRow, first: string): string[] {
  return [first, r.rps.toFixed(2), String(r.status['2xx']), String(r.status['4xx']), String(r.status['5xx']), ms(r.p50), ms(r.p95), ms(r.p99), r.cpu === null ? '-' : `${r.cpu}%`, mb(r.memory)];
}

export const metricsCommands: Command[] = [
  {
    name: 'metrics',
    access: 'member',
    usage: 'metrics [--since 1h] [--type web] [--points N] [-a APP] [--json]',
    example: 'metrics --since 1h -a myapp',
    summary: "an app's requests (rate, status classes, p50/p95/p99 latency) and its processes' CPU and memory over time",
    app: true,
    json: true,
    options: {
      since: { type: 'string' },
      type: { type: 'string' },
      // At most N points: spans are merged (counts add, latency histograms merge), so a chart of a week reads 300, not 1,008.
      points: { type: 'string' },
    },
    args: { min: 0, max: 0 },
    async run(ctx) {
      const sinceText = (ctx.flags['since'] as string | undefined) ?? '1h';
      const sinceMs = parseSince(sinceText);
      const type = ctx.flags['type'] as string | undefined;
      if (type !== undefined && !TYPE.test(type)) throw new RackError('bad_argument', `invalid process type ${JSON.stringify(type.slice(0, 30))}`);
      const rawPoints = ctx.flags['points'] as string | undefined;
      const maxPoints = rawPoints === undefined ? undefined : Number(rawPoints);
      if (maxPoints !== undefined && (!/^\d{1,5}$/.test(rawPoints!) || maxPoints < 1 || maxPoints > MAX_POINTS)) {
        throw new RackError('bad_argument', `--points takes a count from 1 to ${MAX_POINTS}, got ${JSON.stringify(rawPoints!.slice(0, 20))}`);
      }
      await ctx.services.store.requireApp(ctx.app);
      const found = await ctx.services.metrics.points(ctx.app, sinceMs);
      const { resolution } = found;
      const resolutionS = RESOLUTIONS.find((r) => r.res === resolution)?.spanS ?? 10;
      const points = maxPoints === undefined ? found.points : downsample(found.points, stepFor(sinceMs / 1000, resolutionS, maxPoints));
      const rows = points.map((p) => metricRow(p, type));
      const first = points[0];
      const totalSpan = first === undefined ? sinceMs / 1000 : Math.max(10, Math.round((Date.now() - first.at) / 1000));
      const total = metricRow(combinePoints(first?.at ?? Date.now() - sinceMs, totalSpan, points), type);
      if (ctx.flags['json']) return ctx.printJson({ app: ctx.app, since: sinceText, resolution, ...(type === undefined ? {} : { type }), total, points: rows });
      if (rows.length === 0) return ctx.print(`${ctx.app} has no metrics for the last ${sinceText}`);
      const head = ['TIME (UTC)', 'REQ/S', '2XX', '4XX', '5XX', 'P50', 'P95', 'P99', 'CPU', 'MEMORY'];
      const lines = rows.map((r) => line(r, time(r.at)));
      for (const l of table([head, ...lines, line(total, `total (${total.requests} req)`)])) ctx.print(l);
    },
  },
];
