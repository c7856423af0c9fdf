import test from 'ava';
import { spawn } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { exec, keypair, RackDaemon } from './support/rack-daemon.js';

// What an ssh connection may do before it logs in: a short grace time, a cap on how many wait at
// once, a throttle on failed logins per address, one short log line per refusal. Real sockets and
// the real ssh client against a real rackd.
const GRACE_S = 5;
const CAP = 4;
const PER_SOURCE = 2;
const KEEPALIVE_S = 1;
const THROTTLE = { failures: 4, seconds: 20 };

let rack: RackDaemon;
let stranger: string;

test.before(async () => {
  rack = await RackDaemon.create();
  // The admin key is registered; start again with the settings under test.
  await rack.stop();
  await rack.start({
    RACK_SSH_LOGIN_GRACE: String(GRACE_S),
    RACK_SSH_MAX_STARTUPS: String(CAP),
    RACK_SSH_PER_SOURCE_MAX_STARTUPS: String(PER_SOURCE),
    RACK_SSH_KEEPALIVE: String(KEEPALIVE_S),
    RACK_LOGIN_THROTTLE: `${THROTTLE.failures}/${THROTTLE.seconds}`,
  });
  stranger = (await keypair(rack.work, 'stranger')).priv;
});
test.after.always(async () => {
  await rack?.destroy();
});

interface RawConnection {
  socket: Socket;
  /** What the server sent, as text. */
  received: () => string;
  closed: Promise<void>;
}

/** A TCP connection that says nothing, as an idle or hostile client would (from any loopback address). */
function rawConnection(from = '127.0.0.1'): RawConnection {
  const socket = connect({ port: rack.sshPort, host: '127.0.0.1', localAddress: from });
  let data = '';
  socket.on('data', (c: Buffer) => (data += c.toString('latin1')));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, received: () => data, closed };
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const logLines = (msg: string) => rack.output.split('\n').filter((l) => l.includes(`"msg":"${msg}`));
const closedWithin = (c: RawConnection, ms: number) =>
  Promise.race([c.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

test.serial('a refused login leaves one short log line', async (t) => {
  const before = rack.output.length;
  const longUser = 'u'.repeat(5000);
  const r = await rack.ssh(['apps'], { key: stranger, user: longUser });
  t.is(r.code, 255); // ssh's own message is cut short by so long a name
  await until('the refusal to be logged', () => rack.output.slice(before).includes('ssh login refused'));
  const added = rack.output.slice(before).split('\n').filter((l) => l.trim() !== '');
  t.is(added.length, 1, added.join('\n'));
  const line = JSON.parse(added[0]!) as Record<string, unknown>;
  t.is(line['msg'], 'ssh login refused');
  t.is(line['ip'], '127.0.0.1');
  t.true(String(line['user']).length < 100);
  t.true(added[0]!.length < 300, `${added[0]!.length} bytes`);
  t.false(added[0]!.includes('stack'));
});

test.serial('an idle connection that never logs in is closed (the key exchange has part of the grace time)', async (t) => {
  const idle = rawConnection();
  await until('the server banner', () => idle.received().startsWith('SSH-2.0-'));
  await idle.closed;
  t.pass();
});

test.serial('a logged-in connection is not cut by the grace time', async (t) => {
  const control = join(rack.work, 'master.sock');
  const ctl = ['-o', `ControlPath=${control}`];
  const master = spawn('ssh', ['-N', '-o', 'ControlMaster=yes', ...ctl, ...rack.sshArgs()], { stdio: 'ignore' });
  try {
    await until('the master connection', async () => (await exec('ssh', ['-O', 'check', ...ctl, ...rack.sshArgs()])).code === 0);
    await new Promise((r) => setTimeout(r, (GRACE_S + 3) * 1000));
    const r = await exec('ssh', ['-o', 'ControlMaster=no', ...ctl, ...rack.sshArgs(), '--', 'version']);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /^rack /);
    t.is(master.exitCode, null, 'the master connection is still up');
  } finally {
    master.kill();
  }
});

test.serial('past the cap new connections are dropped, logged once; a user gets in once they go', async (t) => {
  const dropLog = 'ssh: 4 connections are waiting to log in';
  t.is(logLines(dropLog).length, 0);
  // From as many addresses as it takes: one address may hold only PER_SOURCE of the slots.
  const held = Array.from({ length: CAP }, (_, i) => rawConnection(`127.0.0.${10 + Math.floor(i / PER_SOURCE)}`));
  await until('the held connections to be served', () => held.every((c) => c.received().startsWith('SSH-2.0-')));

  const extra = rawConnection('127.0.0.20');
  await extra.closed;
  t.is(extra.received(), '', 'dropped before any ssh is spoken');
  const refused = await rack.ssh(['version']);
  t.is(refused.code, 255);
  await until('the drop to be logged', () => logLines(dropLog).length > 0);
  t.is(logLines(dropLog).length, 1, 'one line for the burst');

  // The grace time frees the slots; nobody has to let go.
  for (const c of held) t.true(await closedWithin(c, 60_000));
  const r = await rack.ssh(['version']);
  t.is(r.code, 0, r.stderr);
});

test.serial('one address holding idle connections cannot lock out the others', async (t) => {
  const perSourceLog = 'ssh: 2 connections from 127.0.0.1 are waiting to log in';
  // As many as would fill every slot, all from one address.
  const flood = Array.from({ length: CAP }, () => rawConnection());
  await until('every flood connection to be served or dropped', () => flood.every((c) => c.received().startsWith('SSH-2.0-') || c.socket.destroyed));
  const served = flood.filter((c) => c.received().startsWith('SSH-2.0-'));
  t.is(served.length, PER_SOURCE);
  await until('the per-address drop to be logged', () => logLines(perSourceLog).length > 0);
  // Someone else gets in while the flood still holds its connections.
  const r = await rack.ssh(['version'], { extra: ['-o', 'BindAddress=127.0.0.30'] });
  t.is(r.code, 0, r.stderr);
  t.true(served.every((c) => !c.socket.destroyed), 'the flood was still waiting');
  for (const c of flood) c.socket.destroy();
  await Promise.all(flood.map((c) => c.closed));
});

/** A TCP relay to rackd's ssh port that can go silent, as a laptop does when its lid shuts. */
async function sleepyRelay(): Promise<{ port: number; sleep: () => void; close: () => void }> {
  const pairs: [Socket, Socket][] = [];
  const server = createServer((client) => {
    const upstream = connect(rack.sshPort, '127.0.0.1');
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    client.pipe(upstream);
    upstream.pipe(client);
    pairs.push([client, upstream]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const sleep = () => {
    // Nothing goes either way and nothing is answered: no FIN, no RST, as with a machine asleep.
    for (const [client, upstream] of pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  };
  const close = () => {
    for (const pair of pairs) for (const socket of pair) socket.destroy();
    server.close();
  };
  return { port: (server.address() as AddressInfo).port, sleep, close };
}

test.serial('a logged-in client that goes silent is noticed by keepalives and its connection closed', async (t) => {
  const gone = 'ssh client stopped answering keepalives';
  t.is(logLines(gone).length, 0);
  const relay = await sleepyRelay();
  const control = join(rack.work, 'sleepy.sock');
  const ctl = ['-o', `ControlPath=${control}`];
  const viaRelay = ['-p', String(relay.port), ...rack.sshArgs().slice(2)];
  const master = spawn('ssh', ['-N', '-o', 'ControlMaster=yes', '-o', 'ServerAliveInterval=0', ...ctl, ...viaRelay], { stdio: 'ignore' });
  try {
    await until('the master connection', async () => (await exec('ssh', ['-O', 'check', ...ctl, ...viaRelay])).code === 0);
    relay.sleep();
    await until('rackd to give up on the silent client', () => logLines(gone).length > 0);
    const line = JSON.parse(logLines(gone)[0]!) as Record<string, unknown>;
    t.is(line['ip'], '127.0.0.1');
    t.is(line['user'], 'git');
  } finally {
    master.kill();
    relay.close();
  }
});

test.serial('repeated failed logins from one address are refused for a while', async (t) => {
  const throttled = 'ssh: too many failed logins';
  for (let i = 0; i < 10 && logLines(throttled).length === 0; i++) {
    const r = await rack.ssh(['apps'], { key: stranger });
    t.is(r.code, 255);
  }
  t.is(logLines(throttled).length, 1);
  // Even a good key from that address is turned away until the failures age out.
  const blocked = await rack.ssh(['version']);
  t.is(blocked.code, 255);
  t.notRegex(blocked.stderr, /Permission denied/);
  await until('the address to be let in again', async () => (await rack.ssh(['version'])).code === 0, 120_000);
  t.is(logLines(throttled).length, 1);
});
