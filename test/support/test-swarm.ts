import { join } from 'node:path';
import { exec, ROOT, type Result } from './rack-daemon.js';

/**
 * A real Docker Swarm on this one machine (docs/SWARM-NOTES.md): the host's engine is the manager,
 * and each worker is a container running its own dockerd (rack/swarm-worker, made by
 * scripts/make-swarm-worker.sh on first use), on a network made for the test. Everything it makes
 * carries the label rack.test=swarm, and down() leaves the engine as it found it: no swarm, no
 * worker, no network.
 */
export const SWARM_NET = 'rack-swarm-test';
export const MANAGER_ADDR = '10.214.0.1';
const WORKER_IMAGE = 'rack/swarm-worker:latest';
const LABEL = 'rack.test=swarm';
/** What a worker needs here: no --privileged (the machine withholds CAP_SYS_RESOURCE). */
const WORKER_FLAGS = [
  '--cap-add', 'SYS_ADMIN', '--cap-add', 'NET_ADMIN', '--cap-add', 'MKNOD',
  '--security-opt', 'seccomp=unconfined', '--security-opt', 'apparmor=unconfined', '--security-opt', 'systempaths=unconfined',
  '-v', '/sys/fs/cgroup:/sys/fs/cgroup:rw', '--tmpfs', '/run', '--tmpfs', '/var/lib/docker:exec',
];

async function must(cmd: string, args: string[], input?: string): Promise<Result> {
  const r = await exec(cmd, args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}):\n${r.stderr}${r.stdout}`);
  return r;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class TestSwarm {
  readonly workers: string[] = [];

  private constructor() {}

  /**
   * The host's engine as the manager of a new swarm, with no worker yet (they join with the
   * command rack prints: addWorker). Refuses to touch an engine already in a swarm.
   */
  static async init(): Promise<TestSwarm> {
    const info = await must('docker', ['info', '--format', '{{.Swarm.LocalNodeState}}']);
    if (info.stdout.trim() !== 'inactive') {
      // A crashed earlier run leaves its network behind; anything else is somebody's real swarm.
      const ours = await exec('docker', ['network', 'inspect', SWARM_NET]);
      if (ours.code !== 0) throw new Error(`this Docker engine is in a swarm already (${info.stdout.trim()}); the swarm tests need one that is not`);
    }
    const swarm = new TestSwarm();
    await swarm.down();
    if ((await exec('docker', ['image', 'inspect', WORKER_IMAGE])).code !== 0) {
      await must('bash', [join(ROOT, 'scripts', 'make-swarm-worker.sh')]);
    }
    await must('docker', ['network', 'create', '--label', LABEL, '--subnet', '10.214.0.0/24', '--gateway', MANAGER_ADDR, SWARM_NET]);
    // Swarm would take 172.18.0.0/16 for it from the local pool: made first, in a chosen range.
    await must('docker', [
      'network', 'create', '--subnet', '10.214.1.0/24',
      '-o', 'com.docker.network.bridge.name=docker_gwbridge',
      '-o', 'com.docker.network.bridge.enable_icc=false',
      '-o', 'com.docker.network.bridge.enable_ip_masquerade=true',
      'docker_gwbridge',
    ]);
    await must('docker', [
      'swarm', 'init', '--advertise-addr', MANAGER_ADDR, '--listen-addr', `${MANAGER_ADDR}:2377`,
      '--default-addr-pool', '10.215.0.0/16', '--default-addr-pool-mask-length', '24',
      // About 3 s to notice a silent node, instead of 15.
      '--dispatcher-heartbeat', '1s',
    ]);
    // No routing mesh: rack reaches tasks at their node's address on host-mode ports.
    await exec('docker', ['network', 'rm', 'ingress'], { input: 'y\n' });
    return swarm;
  }

  /**
   * Starts a worker container and, once its dockerd answers, runs in it the command a new machine
   * runs to join (`nodes:join-command` prints it; it is shell).
   */
  async addWorker(name: string, joinCommand: string): Promise<void> {
    await must('docker', ['run', '-d', '--name', name, '--hostname', name, '--label', LABEL, '--network', SWARM_NET, ...WORKER_FLAGS, WORKER_IMAGE]);
    this.workers.push(name);
    for (let i = 0; ; i++) {
      if ((await exec('docker', ['exec', name, 'docker', 'info', '--format', '{{.Driver}}'])).code === 0) break;
      if (i > 100) throw new Error(`the dockerd of ${name} did not answer`);
      await sleep(200);
    }
    await must('docker', ['exec', name, 'sh', '-c', joinCommand]);
    await this.waitNode(name, (n) => n.state === 'ready');
  }

  /** Waits until the node's state (as the manager sees it) passes `ok`. */
  async waitNode(name: string, ok: (n: { state: string; availability: string }) => boolean, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await exec('docker', ['node', 'inspect', name, '--format', '{{.Status.State}} {{.Spec.Availability}}']);
      const [state = '', availability = ''] = r.stdout.trim().split(' ');
      if (r.code === 0 && ok({ state, availability })) return;
      if (Date.now() > deadline) throw new Error(`node ${name} is "${r.stdout.trim() || r.stderr.trim()}" after ${timeoutMs / 1000} s`);
      await sleep(200);
    }
  }

  /** Kills a worker's container: to the manager, a machine that went away. */
  async kill(name: string): Promise<void> {
    await must('docker', ['kill', name]);
  }

  /** Leaves the engine as before: services gone, swarm left, workers and networks removed. */
  async down(): Promise<void> {
    const services = (await exec('docker', ['service', 'ls', '-q'])).stdout.split('\n').filter((s) => s !== '');
    if (services.length > 0) await exec('docker', ['service', 'rm', ...services]);
    await exec('docker', ['swarm', 'leave', '--force']);
    const workers = (await exec('docker', ['ps', '-aq', '--filter', `label=${LABEL}`])).stdout.split('\n').filter((s) => s !== '');
    if (workers.length > 0) await exec('docker', ['rm', '-f', '-v', ...workers]);
    // Tags of the registry's loopback name (the stack's among them) outlive the test's rackd.
    const tags = (await exec('docker', ['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n').filter((t) => t.startsWith('127.0.0.1:5000/'));
    if (tags.length > 0) await exec('docker', ['rmi', ...tags]);
    for (const net of [SWARM_NET, 'docker_gwbridge']) {
      if ((await exec('docker', ['network', 'inspect', net])).code === 0) await exec('docker', ['network', 'rm', net]);
    }
    this.workers.length = 0;
  }
}
