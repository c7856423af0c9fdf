/**
 * Measures redeploys over ssh and over HTTP on the same app in one run, interleaved: `git push` →
 * the new release answering through the router, and the ratio HTTP/ssh, against a real rackd,
 * git, ssh and Docker.
 *   npm run build && node dist/scripts/bench-http-push.js [redeploys per transport]
 */
import { commitFile, exec, RackDaemon } from '../test/support/rack-daemon.js';

const redeploys = Number(process.argv[2] ?? 5);
const server = (marker: string) => `require('http').createServer((q, s) => s.end('${marker}')).listen(process.env.PORT);\n`;
const gitEnv = { ...process.env, GIT_TERMINAL_PROMPT: '0' };

async function timePush(rack: RackDaemon, dir: string, app: string, marker: string, push: () => ReturnType<typeof exec>): Promise<number> {
  await commitFile(dir, 'server.js', server(marker), marker);
  const t0 = performance.now();
  const result = await push();
  if (result.code !== 0) throw new Error(`push failed:\n${result.stderr}`);
  for (;;) {
    const res = await rack.get(app).catch(() => ({ status: 0, body: '' }));
    if (res.body === marker) break;
    if (performance.now() - t0 > 120_000) throw new Error('new release never answered');
  }
  return performance.now() - t0;
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length / 2;
  const median = s.length % 2 ? s[Math.floor(mid)]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, max: s[s.length - 1]! };
};
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

const rack = await RackDaemon.create();
try {
  const app = 'bench-http';
  const create = await rack.ssh(['apps:create', app]);
  if (create.code !== 0) throw new Error(create.stderr);
  const token = await rack.createToken('bench', ['--app', app]);
  const dir = await rack.appRepo('node-hello', app);
  const ssh = () => rack.push(dir);
  const http = () => exec('git', ['push', rack.httpGitUrl(app, token), 'main'], { cwd: dir, env: gitEnv });
  await timePush(rack, dir, app, 'first', ssh); // the first build fills the cache for both
  const times = { ssh: [] as number[], http: [] as number[] };
  for (let i = 0; i < redeploys; i++) {
    // Alternate which goes first, so neither always follows the other.
    const order: ('ssh' | 'http')[] = i % 2 ? ['http', 'ssh'] : ['ssh', 'http'];
    for (const t of order) times[t].push(await timePush(rack, dir, app, `${t}-${i}`, t === 'ssh' ? ssh : http));
  }
  const s = stats(times.ssh);
  const h = stats(times.http);
  console.log(`redeploy over ssh  → answering (n=${redeploys}): median ${secs(s.median)}, max ${secs(s.max)}`);
  console.log(`redeploy over HTTP → answering (n=${redeploys}): median ${secs(h.median)}, max ${secs(h.max)}`);
  console.log(`ratio HTTP/ssh: median ${(h.median / s.median).toFixed(2)}, max ${(h.max / s.max).toFixed(2)}`);
} finally {
  await rack.destroy();
}
