import { createdBy } from '../access/principal.js';
import { importTarball } from '../build/tarball-source.js';
import { paths } from '../config.js';
import { ensureBareRepo } from '../git/repo.js';
import { RackError } from '../rack-error.js';
import { textOutput } from '../user-output.js';
import type { Command } from './command.js';

/**
 * Builds from CI without git (Heroku's build API, `convox build`): the source arrives as a
 * `.tar.gz`, becomes a commit of the app's repo on no branch, and is built as a push would be.
 */
export const tarballBuildCommands: Command[] = [
  {
    // Deploy-level, as a push is: a deploy-only CI key may ship a tarball as it may push.
    name: 'builds:upload',
    access: 'deploy',
    usage: 'builds:upload [--deploy] [--version V] [--description TEXT] [-a APP] < source.tar.gz',
    example: 'builds:upload --deploy -a myapp < source.tar.gz',
    summary: 'build a .tar.gz of the source sent on stdin (POST /api/v1/apps/APP/builds over HTTP); --deploy releases it',
    app: true,
    options: { deploy: { type: 'boolean' }, version: { type: 'string' }, description: { type: 'string' } },
    args: { min: 0, max: 0 },
    audit: (ctx) => ({ detail: `tarball${typeof ctx.flags['version'] === 'string' ? ` ${ctx.flags['version'].slice(0, 60)}` : ''}${ctx.flags['deploy'] === true ? ' deploy' : ''}` }),
    async run(ctx) {
      const body = ctx.body ?? ctx.session?.stdin;
      if (!body) throw new RackError('bad_argument', 'send the .tar.gz on standard input: ssh rack builds:upload -a APP < source.tar.gz');
      const version = typeof ctx.flags['version'] === 'string' ? oneLine('version', ctx.flags['version']) : undefined;
      const description = typeof ctx.flags['description'] === 'string' ? oneLine('description', ctx.flags['description']) : undefined;
      const { config, pipeline } = ctx.services;
      const out = textOutput(ctx.print);
      const repo = await ensureBareRepo(paths.repos(config), ctx.app);
      // Nothing is printed until the tarball is in: a refusal is then a plain error answer (400, 413).
      const source = await importTarball(body, {
        repo,
        tmpDir: paths.tmp(config),
        author: createdBy(ctx.principal),
        limits: { maxBytes: config.maxPushBytes, maxUnpackedBytes: 4 * config.maxPushBytes, maxEntries: 100_000 },
        ...(version === undefined ? {} : { version }),
      });
      out.header(`Received the source tarball: ${source.files} files, as commit ${source.commit.slice(0, 7)}`);
      const deploy = ctx.flags['deploy'] === true;
      const { build, release } = await pipeline.buildCommit(
        { app: ctx.app, repo, commit: source.commit, source: { type: 'tarball', ...(version === undefined ? {} : { version }), ...(description === undefined ? {} : { description }) }, keyName: createdBy(ctx.principal), deploy },
        out,
      );
      ctx.result({ build: build.id, status: build.status, commit: source.commit, version: version ?? null, release: release?.version ?? null, deployed: release !== null });
      if (!deploy) out.header(`Built b${build.id}; release it with builds:upload --deploy (API: ?deploy=true), or push`);
    },
  },
];

/** Shown in builds, releases and the commit's message: one line of plain text. */
function oneLine(name: string, text: string): string {
  if (!/^[\x20-\x7e]{1,200}$/.test(text)) throw new RackError('bad_argument', `${name} must be 1-200 printable ASCII characters`);
  return text;
}
