import test from 'ava';
import { checkCeilings, DEFAULT_LIMITS, formatCeilings, formatLimits, forProcess, parseLimitWords } from '../daemon/runtime/isolation.js';

test('disk limits: parsed, bounded, formatted, and carried to the confinement', (t) => {
  t.deepEqual(parseLimitWords(['disk=1g', 'memory=256m']), { diskMb: 1024, memoryMb: 256 });
  t.deepEqual(parseLimitWords(['disk=64m']), { diskMb: 64 });
  t.throws(() => parseLimitWords(['disk=1m']), { message: /^disk=1m is out of range \(16 MiB to 1048576 MiB\)$/ });
  t.throws(() => parseLimitWords(['disk=2t']), { message: /^disk=2t is out of range/ });
  t.throws(() => parseLimitWords(['disks=1g']), { message: /expected memory=SIZE, cpu=N, pids=N or disk=SIZE/ });
  t.is(formatLimits({ ...DEFAULT_LIMITS, diskMb: 2048 }), 'memory=512m cpu=1 pids=256 disk=2g');
  t.is(formatLimits(DEFAULT_LIMITS), 'memory=512m cpu=1 pids=256', 'no disk named: the runtime applies RACK_DISK_LIMIT');
  t.is(forProcess({ ...DEFAULT_LIMITS, diskMb: 64 }).diskBytes, 64 * 1024 * 1024);
  t.is(forProcess(DEFAULT_LIMITS).diskBytes, undefined);
});

test('ceilings: the defaults where none is set, an admin\'s where set; cpu=shared is past any', (t) => {
  t.is(formatCeilings(undefined), 'memory=2g cpu=2 pids=1024 disk=4g');
  t.is(formatCeilings({ memoryMb: 4096, diskMb: 512 }), 'memory=4g cpu=2 pids=1024 disk=512m');
  t.notThrows(() => checkCeilings({ memoryMb: 2048, cpu: 2, pids: 1024, diskMb: 4096 }, undefined));
  t.throws(() => checkCeilings({ memoryMb: 2049 }, undefined), { message: /^memory=2049m is over memory=2g, this app's ceiling per process/ });
  t.throws(() => checkCeilings({ cpu: 0 }, undefined), { message: /^cpu=shared is over cpu=2/ });
  t.throws(() => checkCeilings({ pids: 4096 }, undefined), { code: 'forbidden' } as object);
  t.notThrows(() => checkCeilings({ memoryMb: 8192 }, { memoryMb: 8192 }));
  t.throws(() => checkCeilings({ diskMb: 1024 }, { diskMb: 512 }), { message: /^disk=1g is over disk=512m/ });
});
