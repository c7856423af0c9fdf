import test from 'ava';
import { readFile } from 'node:fs/promises';
import type { NodeInfo as Node } from '../daemon/runtime/swarm-nodes.js';
import { exec, keypair, RackDaemon } from './support/rack-daemon.js';
import { MANAGER_ADDR, TestSwarm } from './support/test-swarm.js';

// The first test runs rack on one machine; then rack's engine becomes a Swarm manager and a second
// rackd runs with RACK_RUNTIME=swarm.

// The machines of a rack: one by default; on a Swarm (a real one, its workers in containers), the
// nodes commands list, join, drain, activate and remove them.
let rack: RackDaemon;
let single: RackDaemon | undefined;
let swarm: TestSwarm | undefined;


async function nodes(): Promise<Node[]> {
  const r = await rack.ssh(['nodes', '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as Node[];
}

test.before(async () => {
  rack = await RackDaemon.create();
  single = rack;
});

test.after.always(async () => {
  if (rack !== single) await rack?.destroy();
  await single?.destroy();
  await swarm?.down();
});

/** The swarm with rack on its manager and `workers` joined by the command rack prints. */
async function swarmRack(workers: number): Promise<void> {
  if (swarm !== undefined) return;
  swarm = await TestSwarm.init();
  rack = await RackDaemon.create({ RACK_RUNTIME: 'swarm' });
  const join = await rack.ssh(['nodes:join-command']);
  if (join.code !== 0) throw new Error(join.stderr);
  for (let i = 1; i <= workers; i++) await swarm.addWorker(`rack-swarm-w${i}`, join.stdout.trim());
}

test.serial('one machine: nodes lists it alone, and the Swarm commands say why they cannot run', async (t) => {
  const list = await nodes();
  t.is(list.length, 1);
  t.like(list[0], { role: 'local', state: 'ready', self: true });
  t.true(list[0]!.memoryBytes > 0);
  const text = await rack.ssh(['nodes']);
  t.regex(text.stdout, /^NAME\s+ROLE\s+ADDRESS\s+STATE\s+AVAILABILITY\s+PROCESSES\s+MEMORY/);
  const join = await rack.ssh(['nodes:join-command']);
  t.is(join.code, 1);
  t.regex(join.stderr, /this rack runs on one machine: start rackd with RACK_RUNTIME=swarm/);
  const drain = await rack.ssh(['nodes:drain', 'anything']);
  t.is(drain.code, 1);
  t.regex(drain.stderr, /one machine: there is no other node/);
});

test.serial('on a Swarm: nodes, the join command a new machine runs, drain, activate and remove', async (t) => {
  await swarmRack(2);
  let list = await nodes();
  t.deepEqual(list.map((n) => [n.name, n.role, n.state]), [
    [list[0]!.name, 'manager', 'ready'],
    ['rack-swarm-w1', 'worker', 'ready'],
    ['rack-swarm-w2', 'worker', 'ready'],
  ]);
  t.true(list[0]!.self);
  t.is(list[0]!.address, MANAGER_ADDR);
  t.regex(list[1]!.address, /^10\.214\.0\.\d+$/);

  // The printed command, run as it is on a new machine, joins it.
  const join = await rack.ssh(['nodes:join-command']);
  t.is(join.code, 0, join.stderr);
  const command = join.stdout.trim();
  t.regex(command, new RegExp(`^mkdir -p /etc/docker/certs.d/${MANAGER_ADDR}:5000 && printf '%b\\\\n' '-----BEGIN CERTIFICATE-----.+' > \\S+ && docker swarm join --token SWMTKN-\\S+ ${MANAGER_ADDR.replace(/\./g, '\\.')}:2377$`));
  await swarm!.addWorker('rack-swarm-w3', command);
  list = await nodes();
  t.deepEqual(list.map((n) => n.name).slice(1), ['rack-swarm-w1', 'rack-swarm-w2', 'rack-swarm-w3']);

  const drain = await rack.ssh(['nodes:drain', 'rack-swarm-w3']);
  t.is(drain.code, 0, drain.stderr);
  t.regex(drain.stdout, /rack-swarm-w3 is drained/);
  t.is((await nodes()).find((n) => n.name === 'rack-swarm-w3')!.availability, 'drain');
  const activate = await rack.ssh(['nodes:activate', 'rack-swarm-w3']);
  t.is(activate.code, 0, activate.stderr);
  t.is((await nodes()).find((n) => n.name === 'rack-swarm-w3')!.availability, 'active');

  const remove = await rack.ssh(['nodes:remove', 'rack-swarm-w3']);
  t.is(remove.code, 0, remove.stderr);
  t.regex(remove.stdout, /Removed rack-swarm-w3/);
  t.false((await nodes()).some((n) => n.name === 'rack-swarm-w3'));
  const audit = await rack.ssh(['audit', '--json']);
  t.true((JSON.parse(audit.stdout) as { action: string }[]).some((e) => e.action === 'nodes:remove'));
});

test.serial('bad node names, the manager itself and keys that are not admin are refused, and nothing changes', async (t) => {
  await swarmRack(1);
  const before = await nodes();
  const manager = before.find((n) => n.self)!;
  const cases: [string[], RegExp][] = [
    [['nodes:drain', '../etc'], /invalid node name/],
    [['nodes:drain', 'a'.repeat(100)], /invalid node name/],
    [['nodes:remove', 'no-such-node'], /no node no-such-node/],
    [['nodes:drain', manager.name], /is the machine rackd runs on/],
    [['nodes:remove', manager.id], /is the machine rackd runs on/],
    [['nodes:drain'], /usage|argument/i],
  ];
  for (const [args, message] of cases) {
    const r = await rack.ssh(args);
    t.is(r.code, 1, args.join(' '));
    t.regex(r.stderr, message, args.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1, `one line for ${args.join(' ')}`);
  }
  await rack.ssh(['apps:create', 'nodes-app']);
  const dev = await keypair(rack.work, 'dev');
  await rack.ssh(['keys:add', 'dev', '--app', 'nodes-app'], { input: await readFile(dev.pub, 'utf8') });
  for (const args of [['nodes'], ['nodes:join-command'], ['nodes:drain', 'rack-swarm-w1']]) {
    const r = await rack.ssh(args, { key: dev.priv });
    t.is(r.code, 1, args.join(' '));
    t.regex(r.stderr, /may not|admin/, args.join(' '));
  }
  t.deepEqual(
    (await nodes()).map((n) => [n.id, n.availability]),
    before.map((n) => [n.id, n.availability]),
  );
  t.is((await exec('docker', ['node', 'ls', '-q'])).stdout.trim().split('\n').length, before.length);
});
