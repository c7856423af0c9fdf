import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, paths } from '../config.js';
import { createLogger } from '../log.js';
import { RackError } from '../rack-error.js';
import { Launcher } from './launcher.js';
import { routerSettings } from '../router/router-spawner.js';

// dist/daemon/launcher/launch.js → the install three levels up.
const installDir = fileURLToPath(new URL('../../../', import.meta.url));

/** `bin/rackd`: what a service manager runs. It runs the current rackd (see launcher.ts). */
async function main(): Promise<number> {
  const config = loadConfig(process.env, installDir);
  await mkdir(paths.logs(config), { recursive: true, mode: 0o700 });
  const log = createLogger(undefined, join(paths.logs(config), 'launcher.log'));
  const launcher = new Launcher({
    home: config.home,
    installDir,
    router: routerSettings(config),
    log,
  });
  return launcher.run();
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`rackd: ${RackError.from(err).message}\n`);
    process.exit(1);
  },
);
