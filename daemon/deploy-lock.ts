import PQueue from 'p-queue';

/**
 * Per-app serialisation, as Dokku's deploy lock: pushes, config changes and rollbacks of one app
 * run one after another, while other apps proceed.
 */
export class DeployLock {
  private readonly queues = new Map<string, PQueue>();

  async run<T>(app: string, task: () => Promise<T>): Promise<T> {
    let queue = this.queues.get(app);
    if (!queue) {
      queue = new PQueue({ concurrency: 1 });
      this.queues.set(app, queue);
    }
    try {
      return (await queue.add(task)) as T;
    } finally {
      if (queue.size === 0 && queue.pending === 0) this.queues.delete(app);
    }
  }

  async idle(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.onIdle()));
  }
}
