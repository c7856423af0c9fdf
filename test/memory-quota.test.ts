import test from 'ava';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { AppEvents, type AppEvent } from '../daemon/app-events.js';
import { eventLine } from '../daemon/drains/event-lines.js';
import { cgroupUsage, type CgroupUsage } from '../daemon/metrics/cgroup-usage.js';
import { overMemoryQuota } from '../daemon/metrics/memory-quota.js';
import { ProcessSampler, type SampledProcess } from '../daemon/metrics/process-sampler.js';

// Issue 30: R14 (memory quota exceeded, the process not killed) as rack can see it: a process at
// its cgroup limit that the kernel had to reclaim from, told once as a `crash`/`memory` event.

const MiB = 2 ** 20;
const ID = 'a'.repeat(64);

test('the cgroup reader gives the memory limit and its hit count, v1 and v2; no limit is none', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'rack-cgroup-'));
  try {
    const v1 = join(root, 'v1');
    await mkdir(join(v1, 'cpuacct/docker', ID), { recursive: true });
    await mkdir(join(v1, 'memory/docker', ID), { recursive: true });
    await writeFile(join(v1, 'cpuacct/docker', ID, 'cpuacct.usage'), '5000\n');
    await writeFile(join(v1, 'memory/docker', ID, 'memory.usage_in_bytes'), `${300 * MiB}\n`);
    await writeFile(join(v1, 'memory/docker', ID, 'memory.stat'), `cache 0\ntotal_inactive_file ${10 * MiB}\n`);
    await writeFile(join(v1, 'memory/docker', ID, 'memory.limit_in_bytes'), `${256 * MiB * 2}\n`);
    await writeFile(join(v1, 'memory/docker', ID, 'memory.failcnt'), '17\n');
    t.deepEqual(await cgroupUsage(ID, v1), { cpuNs: 5000, memoryBytes: 290 * MiB, limitBytes: 512 * MiB, limitHits: 17 });
    await writeFile(join(v1, 'memory/docker', ID, 'memory.limit_in_bytes'), '9223372036854771712\n');
    t.deepEqual(await cgroupUsage(ID, v1), { cpuNs: 5000, memoryBytes: 290 * MiB }, 'unlimited: no limit, no hits');

    const v2 = join(root, 'v2', 'system.slice', `docker-${ID}.scope`);
    await mkdir(v2, { recursive: true });
    await writeFile(join(v2, 'cpu.stat'), 'usage_usec 7\nuser_usec 5\n');
    await writeFile(join(v2, 'memory.current'), `${100 * MiB}\n`);
    await writeFile(join(v2, 'memory.stat'), `inactive_file ${MiB}\n`);
    await writeFile(join(v2, 'memory.max'), `${128 * MiB}\n`);
    await writeFile(join(v2, 'memory.events'), 'low 0\nhigh 0\nmax 4\noom 0\noom_kill 0\n');
    t.deepEqual(await cgroupUsage(ID, join(root, 'v2')), { cpuNs: 7000, memoryBytes: 99 * MiB, limitBytes: 128 * MiB, limitHits: 4 });
    await writeFile(join(v2, 'memory.max'), 'max\n');
    t.deepEqual(await cgroupUsage(ID, join(root, 'v2')), { cpuNs: 7000, memoryBytes: 99 * MiB });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('over the quota: a reclaim at the limit with the memory in use at 90 % or more, held while it stays there', (t) => {
  const at = (mb: number, hits: number): CgroupUsage => ({ cpuNs: 0, memoryBytes: mb * MiB, limitBytes: 512 * MiB, limitHits: hits });
  t.false(overMemoryQuota(at(500, 3), undefined, false), 'a first sample has no count to compare with');
  t.false(overMemoryQuota(at(500, 3), 3, false), 'no reclaim since the last sample');
  t.true(overMemoryQuota(at(500, 4), 3, false));
  t.false(overMemoryQuota(at(200, 9), 3, false), 'a limit filled with droppable cache is no pressure');
  t.true(overMemoryQuota(at(480, 4), 4, true), 'still at the limit: still over');
  t.false(overMemoryQuota(at(300, 4), 4, true), 'back under the share: over no more');
  t.false(overMemoryQuota({ cpuNs: 0, memoryBytes: 500 * MiB }, 3, true), 'no limit, no quota');
});

test('the sampler tells an R14 once a stretch over the quota, for the process, and again after it came back under', async (t) => {
  const events = new AppEvents();
  const told: AppEvent[] = [];
  events.on((e) => told.push(e));
  const procs: SampledProcess[] = [{ id: 'c1', name: 'rack-shop-v3-web.2', app: 'shop', type: 'web', running: true, restarts: 0 }];
  let usage: CgroupUsage = { cpuNs: 0, memoryBytes: 470 * MiB, limitBytes: 512 * MiB, limitHits: 0 };
  const sampler = new ProcessSampler({ list: async () => procs, usage: async () => usage, record: async () => undefined, logger: pino({ level: 'silent' }), events });
  const sample = async (next: Partial<CgroupUsage>) => {
    usage = { ...usage, ...next };
    await sampler.sample();
  };
  await sample({});
  await sample({ limitHits: 5 });
  t.is(told.length, 1);
  t.like(told[0], { kind: 'crash', app: 'shop', action: 'memory', data: { process: 'web.2', type: 'web', error: 'R14', memoryBytes: 470 * MiB, limitBytes: 512 * MiB } });
  await sample({ limitHits: 9 });
  await sample({});
  t.is(told.length, 1, 'told once while it stays over');
  await sample({ memoryBytes: 100 * MiB });
  await sample({ memoryBytes: 500 * MiB, limitHits: 10 });
  t.is(told.length, 2, 'over again after a stretch under');
  t.is(eventLine(told[0]!)?.text, 'Error R14 (Memory quota exceeded): mem=470M(91.8%) of 512M, the kernel reclaiming its memory to keep it under the limit');
  t.is(eventLine(told[0]!)?.proc, 'web.2');
});
