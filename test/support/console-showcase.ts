import { commitFile, RackDaemon } from './rack-daemon.js';

/** A rackd whose Console has something on every page: what the accessibility test and the screenshots look at. */
export interface ConsoleShowcase {
  rack: RackDaemon;
  /** The app the app pages show: web and worker processes, a Redis add-on, a domain, a few releases. */
  app: string;
  /** One of its builds (the build log page). */
  build: number;
  adminToken: string;
}

/**
 * Starts a rackd with two deployed apps (`jobs`: web and worker, a Redis add-on and a domain;
 * `shop`: a web app) and an app whose first deploy failed. Throws when a step fails.
 */
export async function consoleShowcase(): Promise<ConsoleShowcase> {
  const rack = await RackDaemon.create();
  const ssh = async (args: string[]) => {
    const r = await rack.ssh(args);
    if (r.code !== 0) throw new Error(`ssh ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  try {
    for (const [fixture, app] of [['node-procs', 'jobs'], ['node-env', 'shop']] as const) {
      const dir = await rack.appRepo(fixture, app);
      // rack's default health check: node-procs' 5 quick attempts fail on a busy machine.
      if (app === 'jobs') await commitFile(dir, 'app.json', '{}\n', 'default health check');
      const push = await rack.push(dir);
      if (push.code !== 0) throw new Error(`push ${app}: ${push.stderr}`);
    }
    await ssh(['ps:scale', 'worker=1', '-a', 'jobs']);
    await ssh(['config:set', 'GREETING=hello', 'FEATURE_FLAGS=search,export', '-a', 'jobs']);
    await ssh(['addons:create', 'redis', '-a', 'jobs']);
    await ssh(['domains:add', 'www.jobs.example', '-a', 'jobs']);
    await ssh(['apps:create', 'broken']);
    await ssh(['config:set', 'CRASH=1', '-a', 'broken']);
    await rack.push(await rack.appRepo('node-env', 'broken'));
    const adminToken = await rack.createToken('console-admin');
    await rack.createToken('ci', ['--app', 'shop', '--deploy-only', '--expires', '30d']);
    return { rack, app: 'jobs', build: 1, adminToken };
  } catch (err) {
    await rack.destroy();
    throw err;
  }
}
