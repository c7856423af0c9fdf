#!/usr/bin/env node
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, paths } from './config.js';
import { createLogger } from './log.js';
import { RackError } from './rack-error.js';
import { Rackd } from './rackd.js';
import { migrateCommand } from './versions/migrate-command.js';
import { tellReady } from './versions/launcher-link.js';
import { checkCommand } from './versions/startup-check.js';

/** On top of RACK_STOP_GRACE (the time pushes and rollouts get): the components' own stops. */
const STOP_DEADLINE_MS = 20_000;

// dist/daemon/main.js → the install dir two levels up holds buildpacks/, stack/, hooks/, scripts/.
const installDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
// Until the config says where RACK_HOME is, stdout only.
let log = createLogger();

async function main(): Promise<void> {
  const config = loadConfig(process.env, installDir);
  log = createLogger(undefined, paths.rackdLog(config));
  const rackd = new Rackd(config, log);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    const deadline = setTimeout(() => {
      log.error('stop deadline passed; exiting');
      process.exit(1);
    }, config.stopGraceMs + STOP_DEADLINE_MS);
    deadline.unref();
    void rackd.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // A rack:update handed over to another rackd: that one serves now, this process is done.
  void rackd.handedOver.then(() => {
    log.info('handed over to the new rackd; exiting');
    process.exit(0);
  });
  try {
    await rackd.start();
  } catch (err) {
    await rackd.stop();
    throw err;
  }
  tellReady(Math.round(performance.now()));
}

const io = {
  out: (line: string) => process.stdout.write(`${line}\n`),
  err: (line: string) => process.stderr.write(`${line}\n`),
};

if (process.argv[2] === 'migrate') {
  // Offline work on the store (versions/migrate-command.ts): no daemon starts.
  void migrateCommand(process.argv.slice(3), installDir, io).then((code) => process.exit(code));
} else if (process.argv[2] === 'check') {
  // The start-up checks a rack:update runs on this install before it switches to it.
  void checkCommand(process.argv.slice(3), installDir, io).then((code) => process.exit(code));
} else {
  main().catch((err: unknown) => {
    const error = RackError.from(err);
    log.fatal({ code: error.code, err }, error.message);
    process.stderr.write(`rackd: ${error.message}\n`);
    process.exit(1);
  });
}
