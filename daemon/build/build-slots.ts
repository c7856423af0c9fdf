import PQueue from 'p-queue';

/**
 * Who builds when. Each app builds one thing at a time (a queue of one per app), and builds share
 * `concurrency` slots. A build that has held its slot for `longAfterMs` moves to the long-build
 * slots (as many again) when one is free, and gives its first slot back: two apps' long builds
 * cannot hold a third app's quick build for their whole length. At most 2 × concurrency builds
 * run at once, at most `concurrency` of them long ones.
 */
export class BuildSlots {
  private readonly apps = new Map<string, PQueue>();
  private readonly slots: PQueue;
  private readonly longSlots: PQueue;

  constructor(
    concurrency: number,
    private readonly longAfterMs: number,
  ) {
    this.slots = new PQueue({ concurrency });
    this.longSlots = new PQueue({ concurrency });
  }

  /** True when a new build would have to wait for a slot. */
  get busy(): boolean {
    return this.slots.pending >= this.slots.concurrency;
  }

  async run<T>(app: string, task: () => Promise<T>): Promise<T> {
    let queue = this.apps.get(app);
    if (!queue) {
      queue = new PQueue({ concurrency: 1 });
      this.apps.set(app, queue);
    }
    try {
      return (await queue.add(() => this.inSlot(task))) as T;
    } finally {
      if (queue.size === 0 && queue.pending === 0) this.apps.delete(app);
    }
  }

  private inSlot<T>(task: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      void this.slots.add(async () => {
        const work = task();
        work.then(resolve, reject);
        const finished = work.then(
          () => undefined,
          () => undefined,
        );
        let timer: NodeJS.Timeout | undefined;
        const moved = new Promise<void>((gaveUp) => {
          timer = setTimeout(() => {
            void this.longSlots.add(async () => {
              gaveUp();
              await finished;
            });
          }, this.longAfterMs);
        });
        try {
          await Promise.race([finished, moved]);
        } finally {
          clearTimeout(timer);
        }
      });
    });
  }
}
