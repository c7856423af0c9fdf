/**
 * Measures `git push` → the new release answering through the router, for a first push and for
 * redeploys of a small Node app, against a real rackd, git, ssh and Docker.
 *   npm run build && node dist/scripts/bench-push.js [redeploys]
 */
import { commitFile, RackDaemon } from '../test/support/rack-daemon.js';

const redeploys = Number(process.argv[2] ?? 5);
const server = (marker: string) =>
  `require('http').createServer((q, s) => s.end('${marker}')).listen(process.env.PORT);\n`;

async function timePush(rack: RackDaemon, dir: string, app: string, marker: string): Promise<{ push: number; answering: number }> {
  await commitFile(dir, 'server.js', server(marker), marker);
  const t0 = performance.now();
  const result = await rack.push(dir);
  const push = performance.now() - t0;
  if (result.code !== 0) throw new Error(`push failed:\n${result.stderr}`);
  for (;;) {
    const res = await rack.get(app).catch(() => ({ status: 0, body: '' }));
    if (res.body === marker) break;
    if (performance.now() - t0 > 120_000) throw new Error('new release never answered');
  }
  return { push, answering: performance.now() - t0 };
}

const stats = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)]!, min: sorted[0]!, max: sorted[sorted.length - 1]! };
};

const rack = await RackDaemon.create();
try {
  const app = 'bench-push';
  const dir = await rack.appRepo('node-hello', app);
  const first = await timePush(rack, dir, app, 'first');
  const again: number[] = [];
  for (let i = 0; i < redeploys; i++) again.push((await timePush(rack, dir, app, `redeploy-${i}`)).answering);
  const s = stats(again);
  console.log(`first push → answering:    ${(first.answering / 1000).toFixed(2)} s`);
  console.log(`redeploy → answering (n=${redeploys}): median ${(s.median / 1000).toFixed(2)} s, min ${(s.min / 1000).toFixed(2)} s, max ${(s.max / 1000).toFixed(2)} s`);
  console.log(`target ≤ 3 s for a redeploy: ratio median/target ${(s.median / 3000).toFixed(2)}`);
} finally {
  await rack.destroy();
}
