import type { Logger } from '../log.js';
import type { DockerRuntime } from '../runtime/docker-runtime.js';
import type { Store } from '../store/store.js';

/**
 * Keeps the images of the current release and of the newest `keep` releases and builds, so
 * rollbacks stay instant, and the dependency layers they are built on; removes older images of
 * the app, and only images this rack made.
 */
export class ImageRetention {
  constructor(
    private readonly store: Store,
    private readonly runtime: DockerRuntime,
    private readonly keep: number,
    private readonly log: Logger,
  ) {}

  async prune(app: string): Promise<string[]> {
    const record = await this.store.requireApp(app);
    const releases = await this.store.listReleases(app);
    const builds = await this.store.listBuilds(app);
    const kept = new Set<string>();
    for (const r of releases.slice(0, this.keep)) kept.add(r.image);
    for (const b of builds.slice(0, this.keep)) if (b.image) kept.add(b.image);
    const current = releases.find((r) => r.version === record.currentRelease);
    if (current) kept.add(current.image);
    const images = await this.runtime.listAppImages(app);
    // A dependency layer stays while a kept image is built on it (removing its tag would only
    // untag it, and the next build would copy it all again).
    const parents = new Set(images.filter((i) => kept.has(i.tag)).map((i) => i.parent));
    const removed: string[] = [];
    for (const image of images) {
      if (kept.has(image.tag) || parents.has(image.id)) continue;
      if (await this.runtime.removeImage(image.tag)) removed.push(image.tag);
    }
    if (removed.length > 0) this.log.info({ app, removed }, 'pruned old images');
    return removed;
  }
}
