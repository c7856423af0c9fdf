import type Docker from 'dockerode';
import { LABEL } from './labels.js';
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

  /** The same, with each image's ID and its parent's (an app image's parent is its dependency layer). */
  async listWithParents(app: string): Promise<{ tag: string; id: string; parent: string }[]> {
    const images = await this.docker.listImages({ filters: { label: this.owner.filter(`${LABEL.app}=${app}`) } });
    // Only rack's own names: on a Swarm the same image also has a tag in the registry, which goes with it.
    return images.flatMap((i) => (i.RepoTags ?? []).filter((tag) => tag.startsWith(`rack/${app}:`)).map((tag) => ({ tag, id: i.Id, parent: i.ParentId })));
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
