import { realpath } from 'node:fs/promises';
import { isAbsolute, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RackError } from '../rack-error.js';

/**
 * The path a buildpack entry names, as the host will read it: a file:// URL is parsed and
 * percent-decoded (`%2e%2e` is `..` to git), and `.`/`..` are resolved. Symlinks are left to
 * `canonicalBuildpackPath`. Pure: no file system access.
 */
export function lexicalBuildpackPath(entry: string): string {
  let path = entry;
  if (/^file:/i.test(entry)) {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw new RackError('build_failed', `not a valid file:// URL: "${entry.slice(0, 80)}"`);
    }
    if (url.hostname !== '' && url.hostname !== 'localhost') {
      throw new RackError('build_failed', `file:// buildpack URLs name no host: "${entry.slice(0, 80)}"`);
    }
    if (url.search !== '' || url.username !== '' || url.password !== '') {
      throw new RackError('build_failed', `not a plain file:// URL: "${entry.slice(0, 80)}"`);
    }
    url.hash = '';
    try {
      path = fileURLToPath(url); // decodes %XX; refuses an encoded "/"
    } catch {
      throw new RackError('build_failed', `not a valid file:// URL: "${entry.slice(0, 80)}"`);
    }
  }
  if (!isAbsolute(path) || path.includes('\0')) {
    throw new RackError('build_failed', `buildpack path must be absolute: "${entry.slice(0, 80)}"`);
  }
  return resolve(path);
}

/** True when `path` is `root` itself or below it; both must already be canonical. */
export function isBelow(root: string, path: string): boolean {
  return path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/**
 * The canonical host path of a buildpack path or file:// URL, which must lie under `root`
 * (RACK_HOME/buildpacks): decoded, `..` resolved and every symlink followed (realpath), so the
 * check is made on the very path that git or Docker is then given. Never hand them the user's text.
 */
export async function canonicalBuildpackPath(entry: string, root: string): Promise<string> {
  const lexical = lexicalBuildpackPath(entry);
  const refused = new RackError('build_failed', `buildpack path ${entry.slice(0, 120)} must be a directory under ${root}`);
  let realRoot: string;
  let real: string;
  try {
    realRoot = await realpath(root);
    real = await realpath(lexical);
  } catch {
    throw refused;
  }
  if (!isBelow(realRoot, real)) throw refused;
  return real;
}
