/**
 * First build against cached rebuild, through a real rackd and Docker, for two apps with real
 * dependencies from the npm registry: a small express app, and a React front end bundled by
 * esbuild at build time (test/fixtures/react-like); and a Next.js app, whose `next build` gains from
 * its .next/cache kept between builds (goal: rebuild ≤ 0.5 × first). `builds:create --no-cache` (cold, as a first
 * build) against `builds:create` (the app's cache warm). Prints both, their ratio (goal: rebuild
 * ≤ 0.33 × first), and each app image's size against the run and build stacks: an app image is
 * its /app copied onto the run stack, where it used to be the whole build container committed.
 *   npm run build && node dist/scripts/bench-build-cache.js [rounds]
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { commitFile, exec, RackDaemon } from '../test/support/rack-daemon.js';

const run = promisify(execFile);
const rounds = Number(process.argv[2] ?? 3);
// A typical small web app's dependencies: a few dozen packages from the npm registry.
const dependencies = { express: '^4.21.0', lodash: '^4.17.21', dayjs: '^1.11.13', uuid: '^10.0.0', 'body-parser': '^1.20.3' };
const nextDependencies = { next: '14.2.15', react: '18.3.1', 'react-dom': '18.3.1' };

/** The build's own duration as rack recorded it (no ssh round trip in it). */
async function timed(rack: RackDaemon, app: string, args: string[]): Promise<number> {
  const r = await rack.ssh([...args, '-a', app]);
  if (r.code !== 0) throw new Error(`${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  const [latest] = JSON.parse((await rack.ssh(['builds', '--json', '-a', app])).stdout) as { durationMs: number }[];
  return latest!.durationMs;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mb = async (image: string) => Number((await run('docker', ['image', 'inspect', '--format', '{{.Size}}', image])).stdout) / 1e6;

async function measure(rack: RackDaemon, app: string, dir: string, expect: RegExp, goal = 0.33): Promise<void> {
  await run('npm', ['install', '--package-lock-only', '--no-audit', '--no-fund'], { cwd: dir });
  await exec('git', ['-C', dir, 'add', '-A']);
  await exec('git', ['-C', dir, 'commit', '-qm', 'lockfile']);
  const push = await rack.push(dir);
  if (push.code !== 0) throw new Error(push.stderr);
  const answer = await rack.get(app);
  if (!expect.test(answer.body)) throw new Error(`${app} answered ${answer.status} ${answer.body.slice(0, 80)}`);
  const first: number[] = [];
  const cached: number[] = [];
  for (let i = 0; i < rounds; i++) {
    first.push(await timed(rack, app, ['builds:create', '--no-cache']));
    cached.push(await timed(rack, app, ['builds:create']));
  }
  const f = median(first);
  const c = median(cached);
  const [latest] = JSON.parse((await rack.ssh(['builds', '--json', '-a', app])).stdout) as { image: string }[];
  const [image, runStack] = await Promise.all([mb(latest!.image), mb('rack/stack-run:latest')]);
  console.log(`${app}:`);
  console.log(`  first build (empty cache), median of ${rounds}: ${(f / 1000).toFixed(2)} s`);
  console.log(`  cached rebuild,            median of ${rounds}: ${(c / 1000).toFixed(2)} s`);
  console.log(`  ratio cached/first: ${(c / f).toFixed(2)} (goal ≤ ${goal}) ${c / f <= goal ? 'ok' : 'MISSED'}`);
  console.log(`  app image ${image.toFixed(0)} MB = run stack ${runStack.toFixed(0)} MB + /app ${(image - runStack).toFixed(0)} MB`);
}

const rack = await RackDaemon.create();
try {
  const express = await rack.appRepo('node-hello', 'bench-express');
  const pkg = { name: 'bench-express', version: '1.0.0', private: true, scripts: { start: 'node server.js' }, dependencies };
  await writeFile(join(express, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  await commitFile(express, 'server.js', "require('express')().get('/', (q, s) => s.send('ok')).listen(process.env.PORT);\n", 'express app');
  await measure(rack, 'bench-express', express, /^ok$/);
  await measure(rack, 'bench-react', await rack.appRepo('react-like', 'bench-react'), /<div id="root">/);
  // A real Next.js app: its `next build` keeps webpack's work in .next/cache, which the buildpack
  // keeps between builds as Heroku's does (the framework caches); the cold build starts without it.
  const next = await rack.appRepo('node-hello', 'bench-next');
  const nextPkg = { name: 'bench-next', version: '1.0.0', private: true, scripts: { build: 'next build', start: 'next start -p $PORT' }, dependencies: nextDependencies };
  await writeFile(join(next, 'package.json'), `${JSON.stringify(nextPkg, null, 2)}\n`);
  await mkdir(join(next, 'pages'), { recursive: true });
  await writeFile(join(next, 'pages', 'about.js'), "export default function About() { return <p>about</p>; }\n");
  await commitFile(next, 'pages/index.js', "import Link from 'next/link';\nexport default function Home() { return <main><h1>bench-next</h1><Link href=\"/about\">about</Link></main>; }\n", 'next app');
  await rack.ssh(['config:set', 'NEXT_TELEMETRY_DISABLED=1', '-a', 'bench-next']);
  await measure(rack, 'bench-next', next, /bench-next/, 0.5);
  const buildStack = await mb('rack/stack:latest');
  console.log(`build stack ${buildStack.toFixed(0)} MB: committing the build container, as before the split, made an image of at least that plus /app`);
} finally {
  await rack.destroy();
}
