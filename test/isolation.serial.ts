import test from 'ava';
import { createServer, type Server } from 'node:net';
import { linkLocalService } from './support/link-local-service.js';
import { exec, RackDaemon } from './support/rack-daemon.js';

// In the serial pass (ava.serial.config.mjs), with no other rackd making networks meanwhile: while
// dockerd makes a network its FORWARD rules are briefly gone (the known gap in docs/ARCHITECTURE.md).

// Attacks from inside one tenant's containers (`run` and web processes, as a key for that app
// only could start them), each of which must stay inside its app while the victim keeps serving.

let rack: RackDaemon;
let hostService: Server;
let hostPort = 0;
test.before(async () => {
  rack = await RackDaemon.create();
  for (const app of ['attacker', 'victim']) {
    const dir = await rack.appRepo('tenant', app);
    const push = await rack.push(dir);
    if (push.code !== 0) throw new Error(push.stderr);
    const set = await rack.ssh(['config:set', `NAME=${app}`, '-a', app]);
    if (set.code !== 0) throw new Error(set.stderr);
    await rack.drained(app);
  }
  // A service on every address of the host, as a database or rack's own ports may be.
  hostService = createServer((s) => {
    s.on('error', () => undefined);
    s.end('host secret\n');
  });
  await new Promise<void>((r) => hostService.listen(0, '0.0.0.0', r));
  hostPort = (hostService.address() as { port: number }).port;
});
test.after.always(async () => {
  hostService?.close();
  await rack?.destroy();
});

const inspect = async (app: string) => {
  const ids = (await exec('docker', ['ps', '-q', '--filter', `label=rack.app=${app}`, '--filter', 'label=rack.role=process'])).stdout.split('\n').filter(Boolean);
  const out = await exec('docker', ['inspect', ...ids]);
  return JSON.parse(out.stdout) as {
    Id: string;
    Config: { User: string };
    HostConfig: { CapDrop: string[] | null; SecurityOpt: string[] | null; Memory: number; NanoCpus: number; PidsLimit: number; NetworkMode: string };
    NetworkSettings: { Networks: Record<string, { IPAddress: string; Gateway: string }> };
  }[];
};

const run = (app: string, command: string) => rack.ssh(['run', '-a', app, command]);

async function victimServes(t: { deepEqual: (a: unknown, b: unknown, m?: string) => void }): Promise<void> {
  t.deepEqual(await rack.get('victim'), { status: 200, body: 'tenant victim\n' }, 'the victim keeps serving');
}

test.serial('each app has its own network, and one app cannot reach another app\'s containers', async (t) => {
  const [attacker] = await inspect('attacker');
  const [victim] = await inspect('victim');
  const attackerNets = Object.keys(attacker!.NetworkSettings.Networks);
  const victimNets = Object.keys(victim!.NetworkSettings.Networks);
  t.is(attackerNets.length, 1);
  t.is(victimNets.length, 1);
  t.not(attackerNets[0], victimNets[0]);
  t.false(attackerNets.includes('bridge'), 'not on the default bridge');
  const victimIp = Object.values(victim!.NetworkSettings.Networks)[0]!.IPAddress;
  // The probe works: the attacker reaches its own web process by its address.
  const ownIp = Object.values(attacker!.NetworkSettings.Networks)[0]!.IPAddress;
  const own = await run('attacker', `node probe.js ${ownIp} 5000`);
  t.is(own.stdout.trim(), 'open', own.stderr);
  const probe = await run('attacker', `node probe.js ${victimIp} 5000`);
  t.regex(probe.stdout, /^closed: /, 'app B is not reachable past the router');
  await victimServes(t);
});

test.serial('an app cannot reach the host\'s own ports', async (t) => {
  const [attacker] = await inspect('attacker');
  const gateway = Object.values(attacker!.NetworkSettings.Networks)[0]!.Gateway;
  t.truthy(gateway);
  // The service answers on the host's addresses (from the host itself it is open)...
  const fromHost = await exec('node', ['test/fixtures/tenant/probe.js', gateway, String(hostPort)]);
  t.is(fromHost.stdout.trim(), 'open');
  // ...but not to a tenant's container.
  const probe = await run('attacker', `node probe.js ${gateway} ${hostPort}`);
  t.regex(probe.stdout, /^closed: /, probe.stdout + probe.stderr);
  await victimServes(t);
});

test.serial('an app cannot reach link-local addresses (a cloud\'s metadata service)', async (t) => {
  const service = await linkLocalService();
  try {
    // The service answers from the host...
    const fromHost = await exec('node', ['test/fixtures/tenant/probe.js', '169.254.169.254', '80']);
    t.is(fromHost.stdout.trim(), 'open', fromHost.stderr);
    // ...but not to a tenant's one-off container or web process.
    const probe = await run('attacker', 'node probe.js 169.254.169.254 80');
    t.regex(probe.stdout, /^closed: /, probe.stdout + probe.stderr);
    const [web] = await inspect('attacker');
    const exec_ = await exec('docker', ['exec', web!.Id, 'node', '/app/probe.js', '169.254.169.254', '80']);
    t.regex(exec_.stdout, /^closed: /, exec_.stdout + exec_.stderr);
  } finally {
    await service.stop();
  }
  await victimServes(t);
});

test.serial('processes and one-off runs are unprivileged: not root, no capabilities, no new privileges', async (t) => {
  for (const c of await inspect('attacker')) {
    t.is(c.Config.User, '1000:1000');
    t.deepEqual(c.HostConfig.CapDrop, ['ALL']);
    t.true((c.HostConfig.SecurityOpt ?? []).some((o) => o.startsWith('no-new-privileges')));
  }
  const id = await run('attacker', 'id -u && id -g && cat /proc/self/status | grep -E "^(CapEff|NoNewPrivs)"');
  t.is(id.code, 0, id.stderr);
  const [uid, gid, capEff, noNew] = id.stdout.trim().split('\n');
  t.is(uid, '1000');
  t.is(gid, '1000');
  t.regex(capEff!, /CapEff:\s+0{16}/);
  t.regex(noNew!, /NoNewPrivs:\s+1/);
  // The app's own files are its user's: it can read, run and write under /app, as on a dyno.
  const write = await run('attacker', 'touch /app/scratch && ls -ld /app | cut -d" " -f3 && echo $HOME');
  t.is(write.code, 0, write.stderr);
  t.deepEqual(write.stdout.trim().split('\n'), ['1000', '/app']);
  const root = await run('attacker', 'cat /etc/shadow');
  t.not(root.code, 0, 'root-only files stay closed');
});

test.serial('limits have defaults, are set per type with ps:limit, and are shown by ps', async (t) => {
  const [before] = await inspect('attacker');
  t.is(before!.HostConfig.Memory, 512 * 1024 * 1024);
  t.is(before!.HostConfig.NanoCpus, 1e9);
  t.is((before!.HostConfig as unknown as { CpuShares: number }).CpuShares, 1024);
  t.is(before!.HostConfig.PidsLimit, 256);
  for (const bad of [['web', 'cpu=64'], ['web', 'memory=1t'], ['web', 'swap=1g'], ['web', 'pids=0'], ['nosuch', 'memory=256m'], ['constructor', 'memory=256m']]) {
    const r = await rack.ssh(['ps:limit', ...bad, '-a', 'attacker']);
    t.is(r.code, 1, bad.join(' '));
    t.is(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr);
  }
  const set = await rack.ssh(['ps:limit', 'web', 'memory=128m', 'pids=64', 'cpu=0.5', '-a', 'attacker']);
  t.is(set.code, 0, set.stderr);
  t.regex(set.stdout, /web processes of attacker run with memory=128m cpu=0.5 pids=64/);
  await rack.drained('attacker');
  const [after] = await inspect('attacker');
  t.is(after!.HostConfig.Memory, 128 * 1024 * 1024);
  t.is(after!.HostConfig.NanoCpus, 5e8);
  t.is(after!.HostConfig.PidsLimit, 64);
  const ps = await rack.ssh(['ps', '-a', 'attacker']);
  t.regex(ps.stdout, /memory=128m cpu=0\.5 pids=64/);
  t.deepEqual(await rack.get('attacker'), { status: 200, body: 'tenant attacker\n' });
  await victimServes(t);
});

test.serial('a memory hog is killed at its limit and says so; the host and the victim are fine', async (t) => {
  const hog = await run('attacker', 'node -e "const a=[]; for (;;) a.push(Buffer.alloc(16e6, 1))"');
  t.is(hog.code, 137, 'the one-off process was killed by the OOM killer');
  // A web process that leaks is killed too, and its log and ps say it was memory.
  await rack.get('attacker', '/hog').catch(() => undefined);
  let logs = '';
  for (let i = 0; i < 60 && !/R15/.test(logs); i++) {
    await new Promise((r) => setTimeout(r, 500));
    logs = (await rack.ssh(['logs', '-n', '100', '-a', 'attacker'])).stdout;
  }
  t.regex(logs, /Error R15 \(Memory quota vastly exceeded\)/);
  t.regex(logs, /Process exited with status 137/);
  await victimServes(t);
});

test.serial('a process spawner stops at its process limit', async (t) => {
  const r = await run('attacker', 'node spawn.js 500');
  t.is(r.code, 0, r.stderr);
  const started = Number(/started (\d+)/.exec(r.stdout)?.[1] ?? 'NaN');
  t.true(started < 64, `started ${started} processes under pids=64`);
  await victimServes(t);
});
