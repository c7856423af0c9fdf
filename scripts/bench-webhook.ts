/**
 * Measures a connected repository's webhook → the new release answering through the router: a
 * git host on loopback (git http-backend, as in the tests), a real rackd and Docker, on a host
 * already running other apps (20 unless `--others N`). Each round commits a change at the host,
 * posts a signed GitHub push delivery and waits for the app to answer with the change. Prints the
 * time to the host's 202 and to answering (median, min, max), and the median of rack's own phases.
 *   npm run bench:webhook [rounds] [--others N]
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { signDelivery } from '../daemon/workflows/webhook-delivery.js';
import { api } from '../test/support/api-client.js';
import { GitHost } from '../test/support/git-host.js';
import { FIXTURES, headOf, RackDaemon } from '../test/support/rack-daemon.js';
import { markerServer, median, othersArg, positional, runOtherApps, secs, type PhaseFigures } from './bench-host.js';

const run = promisify(execFile);
const argv = process.argv.slice(2);
const rounds = Number(positional(argv)[0] ?? 5);
const others = othersArg(argv);
const APP = 'bench-hook';

const host = await GitHost.start();
const rack = await RackDaemon.create({ RACK_FETCH_ALLOW: '127.0.0.1' });
try {
  await runOtherApps(rack, others);
  if ((await rack.ssh(['apps:create', APP])).code !== 0) throw new Error('apps:create failed');
  const work = await host.createRepo(APP, join(FIXTURES, 'node-hello'));
  const connected = await rack.ssh(['repo:connect', host.url(APP), '-a', APP]);
  const secret = /Secret:\s+([0-9a-f]{64})/.exec(connected.stdout)?.[1];
  if (!secret) throw new Error(`repo:connect failed: ${connected.stderr}`);

  const deliver = async (marker: string): Promise<{ accepted: number; answering: number; phases: PhaseFigures }> => {
    await writeFile(join(work, 'server.js'), markerServer(marker));
    await run('git', ['commit', '-qam', marker], { cwd: work });
    await host.push(work);
    const body = JSON.stringify({ ref: 'refs/heads/main', before: '0'.repeat(40), after: await headOf(work) });
    const t0 = performance.now();
    const answer = await api(rack, 'POST', `/hooks/${APP}`, {
      rawBody: body,
      headers: { 'content-type': 'application/json', 'X-GitHub-Event': 'push', 'X-GitHub-Delivery': randomUUID(), ...signDelivery('github', secret, body) },
    });
    const accepted = performance.now() - t0;
    if (answer.status !== 202) throw new Error(`the webhook was answered ${answer.status}: ${answer.text}`);
    for (;;) {
      const res = await rack.get(APP).catch(() => ({ status: 0, body: '' }));
      if (res.body === marker) break;
      if (performance.now() - t0 > 180_000) throw new Error('the new release never answered');
    }
    const answering = performance.now() - t0;
    const [latest] = JSON.parse((await rack.ssh(['releases', '--json', '-a', APP])).stdout) as { version: number }[];
    const info = JSON.parse((await rack.ssh(['releases:info', `v${latest!.version}`, '--json', '-a', APP])).stdout) as { timings: PhaseFigures | null };
    return { accepted, answering, phases: info.timings ?? {} };
  };

  const first = await deliver('first');
  const results: { accepted: number; answering: number; phases: PhaseFigures }[] = [];
  for (let i = 0; i < rounds; i++) results.push(await deliver(`redeploy-${i}`));
  const answering = results.map((r) => r.answering);
  const accepted = results.map((r) => r.accepted);
  console.log(`${others} other apps running`);
  console.log(`first webhook → answering: ${secs(first.answering)}`);
  console.log(`webhook → 202 (n=${rounds}): median ${(median(accepted)).toFixed(1)} ms, max ${Math.max(...accepted).toFixed(1)} ms`);
  console.log(`webhook → answering (n=${rounds}): median ${secs(median(answering))}, min ${secs(Math.min(...answering))}, max ${secs(Math.max(...answering))}`);
  const phaseNames = [...new Set(results.flatMap((r) => Object.keys(r.phases)))];
  console.log(`  phases (median): ${phaseNames.map((p) => `${p} ${secs(median(results.map((r) => (r.phases as Record<string, number>)[p] ?? 0)))}`).join(', ')}`);
} finally {
  await rack.destroy();
  await host.stop();
}
