import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { extract, type Header } from 'tar-stream';
import { formatSize } from '../config.js';
import { RackError } from '../rack-error.js';

const run = promisify(execFile);

export interface TarballImport {
  /** The commit holding the source, on `ref` in the app's bare repo (so git's gc keeps it). */
  commit: string;
  ref: string;
  files: number;
  /** Entries left out: directories are implied, `.git` is git's own. */
  skipped: number;
}

export interface TarballLimits {
  /** The gzip's size: RACK_MAX_PUSH, the bound a push's pack has. */
  maxBytes: number;
  /** What it unpacks to; a small gzip can unpack to gigabytes. */
  maxUnpackedBytes: number;
  maxEntries: number;
}

/** The tree of a source; a path that leaves it, or a file that is no file, refuses the whole tarball. */
function refuse(message: string): RackError {
  return new RackError('bad_argument', `the tarball was refused: ${message}`);
}

/**
 * A tar entry's path inside the source, or undefined for an entry to leave out. Absolute paths and
 * `..` are refused, not rewritten: a tarball that tries them is not a source to build.
 */
export function sourcePath(name: string): string | undefined {
  if (name.includes('\0')) throw refuse('a path holds a NUL byte');
  if (name.startsWith('/')) throw refuse(`${JSON.stringify(name.slice(0, 100))} is an absolute path`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw refuse(`${JSON.stringify(name.slice(0, 100))} climbs out with ".."`);
  if (parts.length === 0) return undefined;
  if (parts.some((p) => p.toLowerCase() === '.git')) return undefined;
  return parts.join('/');
}

/** A symlink may point anywhere inside the source, never out of it (nor at an absolute path). */
export function checkLinkTarget(path: string, target: string): void {
  if (target === '' || target.includes('\0')) throw refuse(`the symlink ${JSON.stringify(path.slice(0, 100))} has no usable target`);
  if (target.startsWith('/')) throw refuse(`the symlink ${JSON.stringify(path.slice(0, 100))} points at an absolute path`);
  const resolved = posix.normalize(posix.join(posix.dirname(path), target));
  if (resolved === '..' || resolved.startsWith('../')) throw refuse(`the symlink ${JSON.stringify(path.slice(0, 100))} points out of the source`);
}

/** git fast-import's quoted path: C-style, so any byte but NUL is safe inside it. */
export function quotePath(path: string): string {
  let out = '"';
  for (const byte of Buffer.from(path, 'utf8')) {
    if (byte === 0x22) out += '\\"';
    else if (byte === 0x5c) out += '\\\\';
    else if (byte < 0x20 || byte === 0x7f) out += `\\${byte.toString(8).padStart(3, '0')}`;
    else out += String.fromCharCode(byte);
  }
  return `${out}"`;
}


/**
 * Turns a `.tar.gz` of an app's source into a commit of the app's bare repo, so a build from it is
 * the same build as a push's (the builder reads source from git). The tarball is read once, as it
 * arrives, into `git fast-import` in a scratch repo; only a whole, accepted import is fetched into
 * the app's repo, so a refused or cut-off upload leaves nothing there. A tarball whose entries all
 * sit under one folder (GitHub's archives) is built from inside that folder, as Heroku does.
 */
export async function importTarball(
  body: Readable,
  opts: { repo: string; tmpDir: string; limits: TarballLimits; author: string; version?: string },
): Promise<TarballImport> {
  const scratch = await mkdtemp(join(opts.tmpDir, 'tarball-'));
  try {
    await run('git', ['init', '--quiet', '--bare', scratch], { env: gitEnv() });
    const imported = await fastImport(body, scratch, opts);
    const tree = await sourceTree(scratch, imported.commit);
    let commit = imported.commit;
    if (tree !== undefined) {
      commit = (await run('git', ['commit-tree', tree, '-m', commitMessage(opts.version)], { cwd: scratch, env: commitEnv(opts.author) })).stdout.trim();
      await run('git', ['update-ref', 'refs/rack/import', commit], { cwd: scratch, env: gitEnv() });
    }
    const ref = `refs/rack/tarballs/${randomUUID()}`;
    await run('git', ['fetch', '--quiet', '--no-tags', scratch, `refs/rack/import:${ref}`], { cwd: opts.repo, env: gitEnv() });
    return { commit, ref, files: imported.files, skipped: imported.skipped };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** The tree of the one folder every entry sits in, when there is exactly one and nothing beside it. */
async function sourceTree(repo: string, commit: string): Promise<string | undefined> {
  const { stdout } = await run('git', ['ls-tree', '-z', commit], { cwd: repo, env: gitEnv() });
  const entries = stdout.split('\0').filter((e) => e !== '');
  if (entries.length !== 1) return undefined;
  const m = /^040000 tree ([0-9a-f]+)\t/.exec(entries[0]!);
  return m?.[1];
}

function commitMessage(version: string | undefined): string {
  return `Source tarball${version === undefined ? '' : ` ${version}`}`;
}

function gitEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env['PATH'], HOME: process.env['HOME'] };
}

/** A name git accepts as an identity: no angle brackets or line breaks from a key's name. */
function identity(author: string): string {
  return author.replace(/[<>\n\r\0]/g, '').slice(0, 100) || 'rack';
}

function commitEnv(author: string): NodeJS.ProcessEnv {
  const name = identity(author);
  return { ...gitEnv(), GIT_AUTHOR_NAME: name, GIT_AUTHOR_EMAIL: 'rack@localhost', GIT_COMMITTER_NAME: 'rack', GIT_COMMITTER_EMAIL: 'rack@localhost' };
}

/** Counts the gzip's bytes as they pass and stops the stream past the limit. */
function byteLimit(max: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > max) done(new RackError('payload_too_large', `the tarball is over rack's limit of ${formatSize(max)} (RACK_MAX_PUSH)`));
      else done(null, chunk);
    },
  });
}

async function fastImport(
  body: Readable,
  repo: string,
  opts: { limits: TarballLimits; author: string; version?: string },
): Promise<{ commit: string; files: number; skipped: number }> {
  const child = spawn('git', ['fast-import', '--quiet', '--done'], { cwd: repo, env: gitEnv(), stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
  child.stdin.on('error', () => undefined); // a dead fast-import is reported by its exit below
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  exited.catch(() => undefined);
  const send = async (data: string | Buffer) => {
    if (!child.stdin.write(data)) await Promise.race([once(child.stdin, 'drain'), exited]);
  };
  const { limits } = opts;
  const tar = extract();
  // Piped by hand, not by pipeline(): a refusal must leave the request open, so the server can
  // read the rest of it away and the client reads the answer instead of a reset connection.
  const limited = byteLimit(limits.maxBytes);
  body.on('error', (err) => limited.destroy(err));
  body.pipe(limited);
  const unpack = pipeline(limited, createGunzip(), tar);
  unpack.catch(() => undefined); // awaited below; the entry loop may end first on a refusal
  let files = 0;
  let skipped = 0;
  let unpacked = 0;
  try {
    const when = Math.floor(Date.now() / 1000);
    const message = Buffer.from(commitMessage(opts.version));
    await send(`commit refs/rack/import\nauthor ${identity(opts.author)} <rack@localhost> ${when} +0000\ncommitter rack <rack@localhost> ${when} +0000\ndata ${message.length}\n`);
    await send(Buffer.concat([message, Buffer.from('\n')]));
    for await (const entry of tar) {
      const header: Header = entry.header;
      const path = sourcePath(header.name);
      const type = header.type ?? 'file';
      if (path === undefined || type === 'directory') {
        skipped++;
        entry.resume();
        continue;
      }
      if (++files > limits.maxEntries) throw refuse(`it holds more than ${limits.maxEntries} entries`);
      if (type === 'symlink') {
        checkLinkTarget(path, header.linkname ?? '');
        const target = Buffer.from(header.linkname!);
        await send(`M 120000 inline ${quotePath(path)}\ndata ${target.length}\n`);
        await send(Buffer.concat([target, Buffer.from('\n')]));
        entry.resume();
        continue;
      }
      if (type !== 'file' && type !== 'contiguous-file') {
        const what = type === 'link' ? 'a hard link' : type === 'fifo' ? 'a fifo' : type.endsWith('device') ? 'a device' : `a ${type} entry`;
        throw refuse(`${JSON.stringify(path.slice(0, 100))} is ${what}; only files, folders and symlinks inside the source are taken`);
      }
      const size = header.size ?? 0;
      unpacked += size;
      if (unpacked > limits.maxUnpackedBytes) throw refuse(`it unpacks to more than ${formatSize(limits.maxUnpackedBytes)}`);
      const mode = ((header.mode ?? 0o644) & 0o111) !== 0 ? '100755' : '100644';
      await send(`M ${mode} inline ${quotePath(path)}\ndata ${size}\n`);
      for await (const chunk of entry as AsyncIterable<Buffer>) await send(chunk);
      await send('\n');
    }
    await unpack;
    if (files === 0) throw refuse('it holds no files');
    await send('done\n');
    child.stdin.end();
    const code = await exited;
    if (code !== 0) throw new RackError('build_failed', `git fast-import failed: ${stderr.trim().split('\n')[0] ?? `status ${code}`}`);
  } catch (err) {
    child.kill('SIGKILL');
    body.unpipe(limited);
    tar.destroy();
    await exited.catch(() => undefined);
    // A broken gzip or tar says so in zlib's or tar-stream's words; say it is the upload.
    if (err instanceof RackError) throw err;
    throw refuse(`it is not a readable .tar.gz (${(err as Error).message.slice(0, 120)})`);
  }
  const commit = (await run('git', ['rev-parse', '--verify', 'refs/rack/import^{commit}'], { cwd: repo, env: gitEnv() })).stdout.trim();
  return { commit, files, skipped };
}
