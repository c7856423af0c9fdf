import { readFile, rename, writeFile } from 'node:fs/promises';
import ssh2 from 'ssh2';

/**
 * ssh2's ed25519 generator makes a key it cannot read back about once in 256 (mscdex/ssh2#1513:
 * it strips a leading zero byte of the public key). A fresh key is kept only once it parses.
 */
const MAX_TRIES = 20;

function usable(key: string): boolean {
  const parsed = ssh2.utils.parseKey(key);
  return !(parsed instanceof Error) && !(Array.isArray(parsed) && parsed.length === 0);
}

function generate(): string {
  for (let i = 0; i < MAX_TRIES; i++) {
    const { private: key } = ssh2.utils.generateKeyPairSync('ed25519');
    if (usable(key)) return key;
  }
  throw new Error(`could not make a usable ed25519 host key in ${MAX_TRIES} tries`);
}

/**
 * The server's identity, made on first start and kept so clients' known_hosts stay valid. A kept
 * key that does not parse (one of the bad ones above, written before this check) could never have
 * served: it is moved aside and replaced.
 */
export async function loadOrCreateHostKey(path: string): Promise<string> {
  try {
    const kept = await readFile(path, 'utf8');
    if (usable(kept)) return kept;
    await rename(path, `${path}.unusable`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const key = generate();
  // wx: two daemons racing on one RACK_HOME must not overwrite each other's key.
  await writeFile(path, key, { mode: 0o600, flag: 'wx' });
  return key;
}
