/**
 * Measures the workflows against a real rackd over real ssh, HTTP and Docker, with other apps running
 * (20 unless `--others N`):
 * - `pipelines:promote -a wf-stage` → the production app `wf-prod` answering with the promoted build
 *   (staging is pushed a new commit first, untimed; the promotion builds nothing);
 * - `POST /api/v1/apps/wf-ci/builds?deploy=true` with a .tar.gz of a small Node app → that app
 *   answering with the new source (a full build: the buildpack runs, as on a push).
 * Prints each run, the medians and rack's own phase timings.
 *   npm run build && node dist/scripts/bench-workflows.js [rounds] [--others N]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { api, events } from '../test/support/api-client.js';
import { commitFile, exec, RackDaemon } from '../test/support/rack-daemon.js';
import { median, medianPhases, othersArg, parseTimings, positional, runOtherApps, secs, type PhaseFigures } from './bench-host.js';

const argv = process.argv.slice(2);
const rounds = Number(positional(argv)[0] ?? 5);
const others = othersArg(argv);
const server = (marker: string) => `require('http').createServer((q, s) => s.end('${marker}')).listen(process.env.PORT);\n`;

async function until(rack: RackDaemon, app: string, body: string, t0: number): Promise<number> {
  for (;;) {
    const res = await rack.get(app).catch(() => ({ status: 0, body: '' }));
    if (res.body === body) return performance.now() - t0;
    if (performance.now() - t0 > 180_000) throw new Error(`${app} never answered ${body}`);
  }
}

async function ssh(rack: RackDaemon, args: string[]): Promise<string> {
  const r = await rack.ssh(args);
  if (r.code !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout + r.stderr;
}

const rack = await RackDaemon.create();
try {
  await runOtherApps(rack, others);
  console.log(`driving: git push to wf-stage, then ssh rack pipelines:promote -a wf-stage → GET wf-prod.localhost answers the pushed marker`);
  const stageDir = await rack.appRepo('node-hello', 'wf-stage');
  if ((await rack.push(stageDir)).code !== 0) throw new Error('first push to wf-stage failed');
  await ssh(rack, ['apps:create', 'wf-prod']);
  await ssh(rack, ['config:set', 'WHERE=production', '-a', 'wf-prod']);
  await ssh(rack, ['pipelines:create', 'wf']);
  await ssh(rack, ['pipelines:add', 'wf-stage', '--pipeline', 'wf', '--stage', 'staging']);
  await ssh(rack, ['pipelines:add', 'wf-prod', '--pipeline', 'wf', '--stage', 'production']);
  const promote: number[] = [];
  const pushes: number[] = [];
  const promotePhases: PhaseFigures[] = [];
  for (let i = 0; i < rounds; i++) {
    await commitFile(stageDir, 'server.js', server(`stage-${i}`), `round ${i}`);
    // Timed too, for comparison: the tarball build below is the same build as this push's.
    const p0 = performance.now();
    if ((await rack.push(stageDir)).code !== 0) throw new Error('push to wf-stage failed');
    pushes.push(await until(rack, 'wf-stage', `stage-${i}`, p0));
    const t0 = performance.now();
    const out = await ssh(rack, ['pipelines:promote', '-a', 'wf-stage']);
    promote.push(await until(rack, 'wf-prod', `stage-${i}`, t0));
    promotePhases.push(parseTimings(out));
    console.log(`  promote ${i + 1}: ${secs(promote.at(-1)!)}`);
  }
  // For comparison, the same app and image: a config change, which starts the same image again.
  const configSet: number[] = [];
  const configPhases: PhaseFigures[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    const out = await ssh(rack, ['config:set', `ROUND=${i}`, '-a', 'wf-prod']);
    configSet.push(await until(rack, 'wf-prod', `stage-${rounds - 1}`, t0));
    configPhases.push(parseTimings(out));
  }

  console.log(`driving: POST /api/v1/apps/wf-ci/builds?deploy=true with a .tar.gz (tar -czf of a node-hello folder) → GET wf-ci.localhost answers the new marker`);
  await ssh(rack, ['apps:create', 'wf-ci']);
  const token = await rack.createToken('bench-ci', ['--app', 'wf-ci', '--deploy-only']);
  const src = join(rack.work, 'wf-ci-src');
  await mkdir(src, { recursive: true });
  await exec('cp', ['-r', join(stageDir, 'package.json'), src]);
  const tarball: number[] = [];
  const tarballPhases: PhaseFigures[] = [];
  for (let i = 0; i < rounds; i++) {
    await writeFile(join(src, 'server.js'), server(`ci-${i}`));
    const packed = await exec('sh', ['-c', `tar -C ${JSON.stringify(src)} -czf - . | base64 -w0`]);
    const body = Buffer.from(packed.stdout, 'base64');
    const t0 = performance.now();
    const r = await api(rack, 'POST', `/api/v1/apps/wf-ci/builds?deploy=true&version=bench-${i}`, { token, rawBody: body, headers: { 'content-type': 'application/gzip' } });
    if (r.status !== 200 || !('result' in (events(r.text).at(-1) ?? {}))) throw new Error(`tarball build failed: ${r.status} ${r.text.slice(-500)}`);
    tarball.push(await until(rack, 'wf-ci', `ci-${i}`, t0));
    tarballPhases.push(parseTimings(events(r.text).map((e) => String(e['line'] ?? '')).join('\n')));
    console.log(`  tarball build ${i + 1} (${body.length} bytes): ${secs(tarball.at(-1)!)}`);
  }

  console.log(`${rounds} rounds, ${others} other apps running`);
  console.log(`pipelines:promote → answering: median ${secs(median(promote))}, max ${secs(Math.max(...promote))}`);
  console.log(`  phases (median): ${medianPhases(promotePhases)}`);
  console.log(`(git push → wf-stage answering: median ${secs(median(pushes))})`);
  console.log(`(config:set on wf-prod → answering: median ${secs(median(configSet))}; phases ${medianPhases(configPhases)})`);
  console.log(`tarball build API (deploy=true) → answering: median ${secs(median(tarball))}, max ${secs(Math.max(...tarball))}`);
  console.log(`  phases (median): ${medianPhases(tarballPhases)}`);
} finally {
  await rack.destroy();
}
