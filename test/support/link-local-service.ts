import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { exec } from './rack-daemon.js';

/**
 * A listener on 169.254.169.254:80 outside the host's own addresses, as a cloud's metadata service
 * is: in a network namespace of its own, routed from the host through a veth pair.
 */
export async function linkLocalService(): Promise<{ stop(): Promise<void> }> {
  const id = randomBytes(3).toString('hex');
  const [ns, outer, inner] = [`rackll-${id}`, `rll${id}h`, `rll${id}n`];
  const ip = async (...args: string[]) => {
    const r = await exec('ip', args);
    if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  };
  await ip('netns', 'add', ns);
  const script = "require('net').createServer((s) => { s.on('error', () => {}); s.end('metadata\\n'); }).listen(80, '169.254.169.254', () => console.log('listening'))";
  let child: ChildProcess | undefined;
  try {
    await ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', inner);
    await ip('link', 'set', inner, 'netns', ns);
    await ip('addr', 'add', '169.254.169.1/24', 'dev', outer);
    await ip('link', 'set', outer, 'up');
    await ip('netns', 'exec', ns, 'ip', 'addr', 'add', '169.254.169.254/24', 'dev', inner);
    await ip('netns', 'exec', ns, 'ip', 'link', 'set', inner, 'up');
    await ip('netns', 'exec', ns, 'ip', 'route', 'add', 'default', 'via', '169.254.169.1');
    const started = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    child = started;
    started.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      started.stdout!.on('data', (c: Buffer) => /listening/.test(c.toString()) && resolve());
      started.once('exit', (code) => reject(new Error(`the link-local listener exited (${code})`)));
    });
  } catch (err) {
    child?.kill();
    await exec('ip', ['netns', 'del', ns]);
    await exec('ip', ['link', 'del', outer]);
    throw err;
  }
  return {
    stop: async () => {
      const exited = new Promise((r) => child!.once('exit', r));
      child!.kill();
      await exited;
      await exec('ip', ['netns', 'del', ns]); // takes the veth pair with it
    },
  };
}
