/**
 * `git push` → the new release answering through the router, on one machine and on a Swarm, in
 * one run: a real rackd, git, ssh and Docker each time; the Swarm is the test one (the host's
 * engine as manager, two workers in containers running their own dockerd, joined with the command
 * rack prints). A first push (on the Swarm: the image's first push to the registry and the
 * workers' first pulls) and redeploys of a small Node app with web=2, with the phases rack timed.
 * The Swarm is left and removed at the end, also on failure.
 *   npm run build && node dist/scripts/bench-swarm.js [redeploys]
 */
import { RackDaemon } from '../test/support/rack-daemon.js';
import { TestSwarm } from '../test/support/test-swarm.js';
import { median, medianPhases, positional, pushToAnswering, secs, type PhaseFigures } from './bench-host.js';

const redeploys = Number(positional(process.argv.slice(2))[0] ?? 3);
const timePush = pushToAnswering;

interface Figures {
  first: { ms: number; phases: PhaseFigures };
  again: { ms: number; phases: PhaseFigures }[];
}

async function measure(rack: RackDaemon): Promise<Figures> {
  const app = 'bench-swarm';
  const dir = await rack.appRepo('node-hello', app);
  // The formation first, so the first push already starts two web processes.
  await rack.ssh(['apps:create', app]);
  await rack.ssh(['ps:scale', 'web=2', '-a', app]);
  const first = await timePush(rack, dir, app, 'first');
  const again = [];
  for (let i = 0; i < redeploys; i++) again.push(await timePush(rack, dir, app, `again-${i}`));
  return { first, again };
}

function report(label: string, f: Figures): void {
  const m = median(f.again.map((a) => a.ms));
  console.log(`${label}:`);
  console.log(`  first push → answering: ${secs(f.first.ms)}   (${medianPhases([f.first.phases])})`);
  console.log(`  redeploy → answering, median of ${f.again.length}: ${secs(m)}   (${medianPhases(f.again.map((a) => a.phases))})`);
}

const single = await RackDaemon.create();
let one: Figures;
try {
  one = await measure(single);
} finally {
  await single.destroy();
}

const swarm = await TestSwarm.init();
let multi: Figures;
try {
  const rack = await RackDaemon.create({ RACK_RUNTIME: 'swarm' });
  try {
    const join = await rack.ssh(['nodes:join-command']);
    if (join.code !== 0) throw new Error(join.stderr);
    await swarm.addWorker('rack-swarm-w1', join.stdout.trim());
    await swarm.addWorker('rack-swarm-w2', join.stdout.trim());
    multi = await measure(rack);
  } finally {
    await rack.destroy();
  }
} finally {
  await swarm.down();
}

console.log(`small Node app, web=2, ${redeploys} redeploys each`);
report('one machine', one);
report('Swarm (manager + 2 workers)', multi);
console.log(`Swarm/one machine, redeploy: ${(median(multi.again.map((a) => a.ms)) / median(one.again.map((a) => a.ms))).toFixed(1)}×`);
