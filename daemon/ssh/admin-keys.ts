import { readFile } from 'node:fs/promises';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import type { Store } from '../store/store.js';
import { parseAuthorizedKeys } from './authorized-keys.js';

const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

/** Registers every key of the RACK_ADMIN_KEYS file as an admin key, once; names come from key comments. */
export async function registerAdminKeys(file: string, store: Store, log: Logger): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new RackError('bad_config', `RACK_ADMIN_KEYS: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  let keys;
  try {
    keys = parseAuthorizedKeys(text);
  } catch (err) {
    throw new RackError('bad_config', `RACK_ADMIN_KEYS: ${file}: ${(err as Error).message}`, { cause: err });
  }
  const existing = await store.listKeys();
  const names = new Set(existing.map((k) => k.name));
  for (const key of keys) {
    if (existing.some((k) => k.publicKey === key.line)) continue;
    const base = KEY_NAME.test(key.comment) ? key.comment : 'admin';
    let name = base;
    for (let i = 2; names.has(name); i++) name = `${base}-${i}`;
    names.add(name);
    await store.addKey({ name, publicKey: key.line, fingerprint: key.fingerprint, role: 'admin', apps: [], createdAt: new Date().toISOString() });
    log.info({ key: name, fingerprint: key.fingerprint }, 'admin key registered');
  }
}
