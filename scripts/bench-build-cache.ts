/**
 * First build against cached rebuild of a Node app with real npm dependencies, through a real
 * rackd and Docker: `builds:create --no-cache` (cold, as a first build) against `builds:create`
 * (the app's cache warm). Prints both, and their ratio (goal: rebuild ≤ 0.33 × first), and the
 * app image's size against the two stack images.
 *   npm run build && node dist/scripts/bench-build-cache.js [rounds]
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { commitFile, RackDaemon } from '../test/support/rack-daemon.js';

const run = promisify(execFile);
const rounds = Number(process.argv[2] ?? 3);
const app = 'bench-cache';
// A typical small web app's dependencies: a few dozen packages from the npm registry.
const dependencies = { express: '^4.21.0', lodash: '^4.17.21', dayjs: '^1.11.13', uuid: '^10.0.0', 'body-parser': '^1.20.3' };

/** The build's own duration as rack recorded it (no ssh round trip in it). */
async function timed(rack: RackDaemon, args: string[]): Promise<number> {
  const r = await rack.ssh([...args, '-a', app]);
  if (r.code !== 0) throw new Error(`${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  const [latest] = JSON.parse((await rack.ssh(['builds', '--json', '-a', app])).stdout) as { durationMs: number }[];
  return latest!.durationMs;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const rack = await RackDaemon.create();
try {
  const dir = await rack.appRepo('node-hello', app);
  const pkg = { name: app, version: '1.0.0', private: true, scripts: { start: 'node server.js' }, dependencies };
  await writeFile(join(dir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  await run('npm', ['install', '--package-lock-only', '--no-audit', '--no-fund'], { cwd: dir });
  await commitFile(dir, 'server.js', "require('express')().get('/', (q, s) => s.send('ok')).listen(process.env.PORT);\n", 'express app');
  const push = await rack.push(dir);
  if (push.code !== 0) throw new Error(push.stderr);
  const first: number[] = [];
  const cached: number[] = [];
  for (let i = 0; i < rounds; i++) {
    first.push(await timed(rack, ['builds:create', '--no-cache']));
    cached.push(await timed(rack, ['builds:create']));
  }
  const f = median(first);
  const c = median(cached);
  console.log(`first build (empty cache), median of ${rounds}: ${(f / 1000).toFixed(2)} s`);
  console.log(`cached rebuild,            median of ${rounds}: ${(c / 1000).toFixed(2)} s`);
  console.log(`ratio cached/first: ${(c / f).toFixed(2)} (goal ≤ 0.33)`);
  // The app image is /app copied onto the run stack; before the split it was the whole build
  // container committed on the build stack, so its size was the build stack's plus /app.
  const [latest] = JSON.parse((await rack.ssh(['builds', '--json', '-a', app])).stdout) as { image: string }[];
  const mb = async (image: string) => Number((await run('docker', ['image', 'inspect', '--format', '{{.Size}}', image])).stdout) / 1e6;
  const [image, runStack, buildStack] = await Promise.all([mb(latest!.image), mb('rack/stack-run:latest'), mb('rack/stack:latest')]);
  console.log(`app image ${image.toFixed(0)} MB = run stack ${runStack.toFixed(0)} MB + /app ${(image - runStack).toFixed(0)} MB (the build stack is ${buildStack.toFixed(0)} MB)`);
} finally {
  await rack.destroy();
}
