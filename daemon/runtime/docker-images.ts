import type Docker from 'dockerode';
import type { Owner } from './owner.js';

/** The Docker driver's image part: what builds made, and their removal. */
export class DockerImages {
  constructor(
    private readonly docker: Docker,
    private readonly owner: Owner,
  ) {}

  exists(ref: string): Promise<boolean> {
    return imageExists(this.docker, ref);
  }

  /** Tags of the app images this rack made. */
  async list(app: string): Promise<string[]> {
    return (await this.listWithParents(app)).map((i) => i.tag);
  }

  /**
   * The same, with each image's ID and its parent's (an app image's parent is its dependency layer).
   * Found by name, not by the `rack.app` label: an image promoted from another app keeps that app's
   * labels and is this app's by its tag `rack/APP:...` alone.
   */
  async listWithParents(app: string): Promise<{ tag: string; id: string; parent: string }[]> {
    const images = await this.docker.listImages({ filters: { label: this.owner.filter(), reference: [`rack/${app}`] } });
    // Only rack's own names: on a Swarm the same image also has a tag in the registry, which goes with it.
    return images.flatMap((i) => (i.RepoTags ?? []).filter((tag) => tag.startsWith(`rack/${app}:`)).map((tag) => ({ tag, id: i.Id, parent: i.ParentId })));
  }

  /**
   * The image and its parents, nearest first, as the engine recorded them: what a Dockerfile build
   * actually started from, whatever its text said. Bounded, as a parent chain is a list rack did not write.
   */
  async ancestry(ref: string): Promise<{ id: string; tags: string[]; labels: Record<string, string> }[]> {
    const chain: { id: string; tags: string[]; labels: Record<string, string> }[] = [];
    for (let id: string = ref; id !== '' && chain.length < 1000; ) {
      const info = (await this.docker.getImage(id).inspect()) as { Id: string; Parent?: string; RepoTags?: string[] | null; Config?: { Labels?: Record<string, string> | null } };
      chain.push({ id: info.Id, tags: (info.RepoTags ?? []).filter((t) => t !== '<none>:<none>'), labels: info.Config?.Labels ?? {} });
      id = info.Parent ?? '';
    }
    return chain;
  }

  /** The IDs of the images a reference names: one for `name:tag`, every tag's for a bare name. */
  async idsOf(ref: string): Promise<string[]> {
    const images = await this.docker.listImages({ filters: { reference: [ref] } });
    return images.map((i) => i.Id);
  }

  /** Gives an image one more name; resolves with its ID, the same under every name. */
  async tag(ref: string, repo: string, tag: string): Promise<string> {
    const image = this.docker.getImage(ref);
    await image.tag({ repo, tag });
    return ((await image.inspect()) as { Id: string }).Id;
  }

  /** False when the image is still used by a container (it is kept then), unless `force`. */
  async remove(ref: string, force = false): Promise<boolean> {
    try {
      await this.docker.getImage(ref).remove({ force });
      return true;
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      if (code === 404) return true;
      if (code === 409) return false;
      throw err;
    }
  }
}

/** Whether the engine has the image (a tag or an ID). */
export async function imageExists(docker: Docker, ref: string): Promise<boolean> {
  try {
    await docker.getImage(ref).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}
