import type { Sublevel, Value } from './store.js';
import type { Writes } from './store-writer.js';
import { RackError } from '../rack-error.js';
import type { TokenRecord } from './records.js';

/**
 * API tokens, by name and by hash (the lookup a request makes). Both entries are written in one
 * batch, so a crash never leaves a hash that points nowhere or a token that cannot be found.
 */
export class TokenStore {
  private readonly revokeListeners = new Set<(name: string) => void>();

  /**
   * @param writes the store's one write queue: a token's rights change in the same queue (and, when
   * an app is destroyed, the same batch) as the app itself.
   */
  constructor(
    readonly db: Sublevel,
    private readonly writes: Writes<Value>,
  ) {}

  add(token: TokenRecord): Promise<void> {
    return this.writes.run(async () => {
      if (await this.get(token.name)) throw new RackError('bad_argument', `a token named "${token.name}" already exists`);
      await this.writes.batch([
        { type: 'put', key: `name!${token.name}`, value: token },
        { type: 'put', key: `hash!${token.hash}`, value: token.name },
      ]);
    });
  }

  revoke(name: string): Promise<TokenRecord> {
    return this.writes.run(async () => {
      const token = await this.get(name);
      if (!token) throw new RackError('bad_argument', `no token named "${name}"`);
      await this.writes.batch([
        { type: 'del', key: `name!${name}` },
        { type: 'del', key: `hash!${token.hash}` },
      ]);
      // Who holds a session of it (a Console page's live stream) ends it now, not at its next check.
      for (const listener of this.revokeListeners) {
        try {
          listener(name);
        } catch {
          // A listener's failure is its own: the token is revoked all the same.
        }
      }
      return token;
    });
  }

  /** Calls `listener` with the name of each token revoked, until the returned function is called. */
  onRevoke(listener: (name: string) => void): () => void {
    this.revokeListeners.add(listener);
    return () => this.revokeListeners.delete(listener);
  }

  async get(name: string): Promise<TokenRecord | undefined> {
    return (await this.db.get(`name!${name}`)) as TokenRecord | undefined;
  }

  async byHash(hash: string): Promise<TokenRecord | undefined> {
    const name = (await this.db.get(`hash!${hash}`)) as string | undefined;
    return name === undefined ? undefined : this.get(name);
  }

  async list(): Promise<TokenRecord[]> {
    const out: TokenRecord[] = [];
    for await (const value of this.db.values({ gte: 'name!', lt: 'name!\xff' })) out.push(value as TokenRecord);
    return out;
  }

  /**
   * Marks a use; a token revoked meanwhile stays revoked. Not synced: nobody is told it was saved,
   * and a sync for every API request would cost more than the mark is worth. Nothing to do once the
   * store refuses changes: a request that only reads must still be answered, without a warning each.
   */
  touch(name: string, at: string): Promise<void> {
    if (this.writes.failure()) return Promise.resolve();
    return this.writes.run(async () => {
      const token = await this.get(name);
      if (token) await this.writes.put(`name!${name}`, { ...token, lastUsedAt: at }, { sync: false });
    });
  }
}
