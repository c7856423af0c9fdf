import { readFile, writeFile } from 'node:fs/promises';
import ssh2 from 'ssh2';

/** The server's identity, made on first start and kept so clients' known_hosts stay valid. */
export async function loadOrCreateHostKey(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const { private: key } = ssh2.utils.generateKeyPairSync('ed25519');
  // wx: two daemons racing on one RACK_HOME must not overwrite each other's key.
  await writeFile(path, key, { mode: 0o600, flag: 'wx' });
  return key;
}
