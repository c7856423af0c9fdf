import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { RackError } from '../rack-error.js';
import { DockerRuntime } from '../runtime/docker-runtime.js';
import { STACK_IMAGE, STACK_RUN_IMAGE } from '../build/stack-image.js';
import { MIGRATIONS } from './migrations.js';
import { rackBuildOf } from './rack-build.js';
import { latestSchema } from './schema-migration.js';

/** What `rackd check --json` answers: who this install is, and what it reads. */
export interface CheckReport {
  version: string;
  commit: string;
  /** The newest store schema this install reads (it migrates older stores up to it). */
  schemaLatest: number;
}

const USAGE = 'rackd check [--json]';

/**
 * `rackd check`: the start-up checks of this install, run by the rack that updates to it before it
 * switches, with the environment rackd will have: the configuration parses under this version's
 * rules, Docker answers, the stack images are there. Touches nothing, and opens no store (the
 * running rackd holds it): the store's schema is compared by the caller with `schemaLatest`.
 * @returns the exit status.
 */
export async function checkCommand(argv: string[], installDir: string, io: { out(line: string): void; err(line: string): void }): Promise<number> {
  try {
    let json = false;
    try {
      const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean' } }, strict: true, allowPositionals: false });
      json = values.json === true;
    } catch (err) {
      throw new RackError('bad_argument', `${(err as Error).message.split('\n')[0]} (usage: ${USAGE})`);
    }
    const config = loadConfig(process.env, installDir);
    const runtime = new DockerRuntime('check', config.appSubnets);
    try {
      await runtime.ping();
    } catch (err) {
      throw new RackError('docker_unavailable', `Docker does not answer: ${(err as Error).message}`);
    }
    for (const image of [STACK_IMAGE, STACK_RUN_IMAGE]) {
      if (!(await runtime.imageExists(image))) throw new RackError('stack_failed', `the stack image ${image} is missing`);
    }
    const build = await rackBuildOf(installDir);
    const report: CheckReport = { ...build, schemaLatest: latestSchema(MIGRATIONS) };
    io.out(json ? JSON.stringify(report) : `rack ${build.version} (${build.commit.slice(0, 7)}): configuration, Docker and stack images are fine; reads the store up to schema v${report.schemaLatest}`);
    return 0;
  } catch (err) {
    const error = RackError.from(err);
    io.err(` !     ${error.message}`);
    return error.exitCode;
  }
}
