import PQueue from 'p-queue';
import type { Logger } from '../log.js';
import type { RackError } from '../rack-error.js';
import { storeWriteFailed, writeReachedLog } from './store-failure.js';

/** A put or del, on the database it is committed to or (for one batch over several) on a sublevel. */
export type WriteOp<V> = { type: 'put'; key: string; value: V; sublevel?: unknown } | { type: 'del'; key: string; sublevel?: unknown };

/** The database or a sublevel: anything with LevelDB's atomic batch. */
export interface BatchTarget<V> {
  batch(ops: WriteOp<V>[], options: { sync: boolean }): Promise<void>;
}

/**
 * The one way a change reaches the database. Changes run one at a time (reading a counter and
 * writing the record that uses it cannot interleave), each commit is one atomic batch, and it is
 * synced before it resolves: what a user is told was saved survives a power cut.
 *
 * The first write that fails stops every later change until rackd restarts. LevelDB does not stop
 * by itself: after a failed append to its log (a full disk) the log holds a torn record and its
 * writer has counted bytes that never reached the file, so the records appended after it are
 * unreadable at the next open, though each write succeeded and was readable until then. Reopening
 * in place could recover, but what rackd did meanwhile (a rollout whose release record was refused,
 * the audit counter) is reconciled only by the checks a start runs, so the way out is a restart.
 */
export class StoreWriter {
  readonly #queue = new PQueue({ concurrency: 1 });
  #failure: RackError | undefined;

  constructor(private readonly log?: Logger) {}

  /** Why changes are refused, once a write has failed. */
  get failure(): RackError | undefined {
    return this.#failure;
  }

  /** Runs a change in the one queue; refused, without running, once a write has failed. */
  run<T>(task: () => Promise<T>): Promise<T> {
    return this.#queue.add(async () => {
      if (this.#failure) throw this.#failure;
      return task();
    }) as Promise<T>;
  }

  /**
   * Writes ops as one batch. `sync: false` only for what nobody is told of (a token's last use):
   * a later synced write carries it to disk anyway.
   */
  async commit<V>(target: BatchTarget<V>, ops: WriteOp<V>[], { sync = true }: { sync?: boolean } = {}): Promise<void> {
    if (this.#failure) throw this.#failure;
    try {
      await target.batch(ops, { sync });
    } catch (err) {
      if (!writeReachedLog(err)) throw err;
      this.#failure = storeWriteFailed(err);
      this.log?.error({ err, code: this.#failure.code }, 'the store failed to write: every change is refused until rackd restarts');
      throw this.#failure;
    }
  }

  idle(): Promise<void> {
    return this.#queue.onIdle();
  }

  /** The writer as one part of the store (the database or a sublevel) uses it. */
  on<V>(target: BatchTarget<V>): Writes<V> {
    return {
      run: (task) => this.run(task),
      batch: (ops, options) => this.commit(target, ops, options),
      put: (key, value, options) => this.commit(target, [{ type: 'put', key, value }], options),
      del: (key) => this.commit(target, [{ type: 'del', key }]),
      failure: () => this.#failure,
    };
  }
}

/** Writes to one database or sublevel, through the store's one queue, each synced (see StoreWriter). */
export interface Writes<V> {
  run<T>(task: () => Promise<T>): Promise<T>;
  batch(ops: WriteOp<V>[], options?: { sync?: boolean }): Promise<void>;
  /** `sync: false` only for what nobody is told of (see StoreWriter.commit). */
  put(key: string, value: V, options?: { sync?: boolean }): Promise<void>;
  del(key: string): Promise<void>;
  /** Why changes are refused, once a write has failed. */
  failure(): RackError | undefined;
}
