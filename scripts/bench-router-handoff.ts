/**
 * `npm run bench:router-handoff`: N router handoffs (RouterClient.replace) under closed-loop
 * keep-alive load (load-generator.ts), through a real router process to a real upstream on loopback.
 * Prints the requests served and failed over the whole run and how long each handoff took (the
 * `handoff` call: successor started, serving, the old router no longer accepting).
 *
 *   HANDOFFS=10 CONNECTIONS=32 npm run bench:router-handoff
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { RouterClient } from '../daemon/router/router-client.js';
import { formatReport, startLoad } from './load-generator.js';

const HANDOFFS = Number(process.env['HANDOFFS'] ?? 10);
const CONNECTIONS = Number(process.env['CONNECTIONS'] ?? 32);
/** Load runs this long between handoffs, so each handoff meets connections in every state. */
const GAP_MS = 500;

async function main(): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), 'bench-handoff-'));
  const app = createServer((_req, res) => res.end('ok'));
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  const client = new RouterClient({
    socketPath: join(base, 'router.sock'),
    statePath: join(base, 'router.json'),
    logPath: join(base, 'router.log'),
    bind: '127.0.0.1',
    port: 0,
    logger: pino({ level: 'warn' }),
  });
  try {
    const port = await client.start();
    await client.setApp('bench', ['bench.localhost'], [{ host: '127.0.0.1', port: (app.address() as AddressInfo).port }]);
    const load = startLoad({ url: `http://127.0.0.1:${port}/`, host: 'bench.localhost', connections: CONNECTIONS, maxDurationMs: 10 * 60_000 });
    const took: number[] = [];
    for (let i = 0; i < HANDOFFS; i++) {
      await new Promise((r) => setTimeout(r, GAP_MS));
      const started = performance.now();
      const { pid } = await client.replace();
      took.push(performance.now() - started);
      console.log(`handoff ${i + 1}: ${took.at(-1)!.toFixed(0)} ms → router pid ${pid}`);
    }
    await new Promise((r) => setTimeout(r, GAP_MS));
    const report = await load.stop();
    console.log(formatReport(report, `${CONNECTIONS} keep-alive clients, ${HANDOFFS} handoffs`));
    const sorted = [...took].sort((a, b) => a - b);
    console.log(`handoff time: min ${sorted[0]?.toFixed(0)} ms, median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(0)} ms, max ${sorted.at(-1)?.toFixed(0)} ms`);
    console.log(`failed requests: ${report.failed}`);
    if (report.failed > 0) process.exitCode = 1;
  } finally {
    await client.shutdown();
    app.close();
    await rm(base, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
