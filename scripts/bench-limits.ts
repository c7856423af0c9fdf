/**
 * What the tenant limits cost: push → answering and router throughput for one small Node app under
 * rack's default limits (memory=512m, cpu=1, pids=256, disk=2g), without the CPU cap (cpu=shared),
 * with the cgroup limits raised out of reach (memory=16g, pids=4096), all against one rackd; and
 * under the defaults on a second rackd with RACK_DISK_LIMIT=off, running beside the first, for
 * what the disk limit costs. Network isolation and the unprivileged user apply in all (they have
 * no off switch). Last, the disk limit's own cost per container: create → started with and
 * without it (mkfs and loop mount of a sparse file), on the bare engine.
 *   npm run build && node dist/scripts/bench-limits.js [rounds] [seconds]
 */
import Docker from 'dockerode';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskLimit } from '../daemon/runtime/disk-limit.js';
import { RackDaemon } from '../test/support/rack-daemon.js';
import { median, medianPhases, pushToAnswering as pushAndWait, type PhaseFigures } from './bench-host.js';
import { ms, runLoad } from './load-generator.js';

const rounds = Number(process.argv[2] ?? 5);
const seconds = Number(process.argv[3] ?? 5);
const app = 'bench-limits';

interface Setting {
  label: string;
  words: string[];
  /** Which rackd: the one with the disk limit (RACK_DISK_LIMIT's default), or the one without. */
  disk: boolean;
}

/** The settings compared; each round measures every one in turn, so drift in the machine's load hits all alike. */
const SETTINGS: Setting[] = [
  { label: 'defaults', words: ['memory=512m', 'cpu=1', 'pids=256'], disk: true },
  { label: 'no disk limit', words: ['memory=512m', 'cpu=1', 'pids=256'], disk: false },
  { label: 'cpu=shared', words: ['memory=512m', 'cpu=shared', 'pids=256'], disk: true },
  { label: 'no cgroup limits', words: ['memory=16g', 'cpu=shared', 'pids=4096'], disk: true },
];

/** create → running for one container of the run stack, with or without a disk limit of 2g. */
async function startCost(docker: Docker, disk: DiskLimit | undefined): Promise<number> {
  const t0 = performance.now();
  const container = await docker.createContainer({ Image: 'rack/stack-run:latest', Cmd: ['true'], Labels: { 'rack.bench': 'limits' } });
  try {
    await disk?.apply(container, undefined);
    await container.start();
    return performance.now() - t0;
  } finally {
    await container.remove({ force: true });
  }
}

const limited = await RackDaemon.create();
const open = await RackDaemon.create({ RACK_DISK_LIMIT: 'off' });
try {
  const dirs = new Map<boolean, string>([
    [true, await limited.appRepo('node-hello', app)],
    [false, await open.appRepo('node-hello', app)],
  ]);
  const rackOf = (disk: boolean) => (disk ? limited : open);
  const pushToAnswering = (disk: boolean, marker: string) => pushAndWait(rackOf(disk), dirs.get(disk)!, app, marker);
  await pushToAnswering(true, 'warm-up');
  await pushToAnswering(false, 'warm-up');
  const results = new Map<string, { push: number[]; phases: PhaseFigures[]; rps: number[]; p99: number[] }>(
    SETTINGS.map((s) => [s.label, { push: [], phases: [], rps: [], p99: [] }]),
  );
  for (let round = 0; round < rounds; round++) {
    for (const { label, words, disk } of SETTINGS) {
      const rack = rackOf(disk);
      const set = await rack.ssh(['ps:limit', 'web', ...words, '-a', app]);
      if (set.code !== 0) throw new Error(set.stderr);
      const r = results.get(label)!;
      const pushed = await pushToAnswering(disk, `${label}-${round}`);
      r.push.push(pushed.ms);
      r.phases.push(pushed.phases);
      const load = await runLoad({ url: `http://127.0.0.1:${rack.httpPort}/`, host: `${app}.localhost`, connections: 16, durationMs: seconds * 1000 });
      if (load.failed > 0) throw new Error(`${load.failed} requests failed under load`);
      r.rps.push(load.rps);
      r.p99.push(load.latency.p99);
    }
  }
  const versus = (label: string, base: string) => {
    const r = results.get(label)!;
    const b = results.get(base)!;
    return `vs ${base}: push ${(median(r.push) / median(b.push)).toFixed(2)}×, throughput ${(median(r.rps) / median(b.rps)).toFixed(2)}×, p99 ${(median(r.p99) / median(b.p99)).toFixed(2)}×`;
  };
  for (const { label } of SETTINGS) {
    const r = results.get(label)!;
    const ratios = [label === 'defaults' ? versus(label, 'no disk limit') : '', label !== 'no cgroup limits' && label !== 'no disk limit' ? versus(label, 'no cgroup limits') : ''].filter(Boolean);
    console.log(
      `${label.padEnd(16)} push → answering median ${(median(r.push) / 1000).toFixed(2)} s; router ${median(r.rps).toFixed(0)} req/s, p99 ${ms(median(r.p99))} (medians of ${rounds})${ratios.length ? `; ${ratios.join('; ')}` : ''}`,
    );
    // Where a push spends its time: the disk limit lands in build (its container and cache) and start.
    console.log(`${''.padEnd(16)} ${medianPhases(r.phases)}`);
  }
} finally {
  await limited.destroy();
  await open.destroy();
}

const scratch = await mkdtemp(join(tmpdir(), 'bench-disk-'));
try {
  const docker = new Docker();
  const disk = new DiskLimit(scratch, 2 * 1024 ** 3);
  await disk.check(docker);
  const with_: number[] = [];
  const without: number[] = [];
  for (let i = 0; i < 20; i++) {
    with_.push(await startCost(docker, disk));
    without.push(await startCost(docker, undefined));
  }
  console.log(`container create → started, medians of 20: ${ms(median(without))} without the disk limit, ${ms(median(with_))} with it (+${ms(median(with_) - median(without))})`);
} finally {
  await rm(scratch, { recursive: true, force: true });
}
