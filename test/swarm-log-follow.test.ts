import test from 'ava';
import type Docker from 'dockerode';
import { pino } from 'pino';
import { LogHub } from '../daemon/logs/log-hub.js';
import type { Owner } from '../daemon/runtime/owner.js';
import type { RegistryImages } from '../daemon/runtime/registry-images.js';
import { SwarmProcesses } from '../daemon/runtime/swarm-processes.js';
import { LogFollower } from '../daemon/supervisor/log-follower.js';
import type { ProcessInfo } from '../daemon/runtime/docker-runtime.js';

// On a Swarm one service's log stream carries all its slots, followed from slot 1. The other
// slots' follows must last as long as their process does: one that returned at once read as a
// died process and was followed again every second, forever. No engine: every call to the fake
// one is counted.

function countingEngine(): { engine: Docker; calls: string[] } {
  const calls: string[] = [];
  const engine = new Proxy({}, {
    get: (_target, name) => (...args: unknown[]) => {
      calls.push(String(name));
      // A service's log stream that never sends a line: followed until aborted.
      if (name === 'getService') return { logs: () => new Promise(() => undefined), inspect: () => Promise.resolve({}) };
      return Promise.reject(new Error(`unexpected engine call ${String(name)}(${args.length})`));
    },
  }) as unknown as Docker;
  return { engine, calls };
}

function swarm(engine: Docker): SwarmProcesses {
  return new SwarmProcesses(engine, {} as Owner, engine, {} as RegistryImages);
}

/** Lets every callback already due run (a promise that would settle at once has by then). */
async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

test("a later slot's follow waits for its abort and asks the engine nothing", async (t) => {
  const { engine, calls } = countingEngine();
  const abort = new AbortController();
  let ended = false;
  const follow = swarm(engine).followLogs('svc/2', 100, () => undefined, abort.signal).then(() => (ended = true));
  await turns();
  t.false(ended, 'still following');
  abort.abort();
  await follow;
  t.true(ended);
  t.deepEqual(calls, []);
});

test('the log follower keeps one follow per Swarm process, not one a second', async (t) => {
  const { engine } = countingEngine();
  const processes = swarm(engine);
  let follows = 0;
  let inspections = 0;
  const follower = new LogFollower(
    {
      followLogs: (...args: Parameters<SwarmProcesses['followLogs']>) => {
        follows += 1;
        return processes.followLogs(...args);
      },
      inspect: () => {
        inspections += 1;
        return Promise.reject(new Error('not asked in this test'));
      },
    },
    new LogHub(),
    pino({ level: 'silent' }),
  );
  const p = { id: 'svc/2', name: 'shop.web.2', app: 'shop', type: 'web' } as ProcessInfo;
  follower.watch(p, 100);
  await turns();
  // A follow still running makes a second watch a no-op; an ended one would start another.
  follower.watch(p, 100);
  t.is(follows, 1);
  t.is(inspections, 0);
  follower.stop();
});
