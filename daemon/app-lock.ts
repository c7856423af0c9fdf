import PQueue from 'p-queue';

/** One task at a time per app, in arrival order, while other apps proceed (a p-queue per app). */
export class AppLock {
  private readonly queues = new Map<string, PQueue>();

  busy(app: string): boolean {
    const queue = this.queues.get(app);
    return queue !== undefined && (queue.pending > 0 || queue.size > 0);
  }

  /** Runs `task` alone for the app; `onWait` runs first when it has to wait for another. */
  async run<T>(app: string, task: () => Promise<T>, onWait?: () => void): Promise<T> {
    if (this.busy(app)) onWait?.();
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
