import { join } from 'node:path';
import { runScript } from '../run-script.js';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import type { DockerRuntime } from '../runtime/docker-runtime.js';
import type { UserOutput } from '../user-output.js';
import type { KindSpec } from './addon-kinds.js';

/**
 * No registry can be pulled from, so a service image is made here from Debian's packages on the
 * first `addons:create` of its kind (scripts/make-addon-image.sh), its progress shown to the user.
 * Two creations of one kind at once share the one build.
 */
export class AddonImages {
  private readonly building = new Map<string, Promise<void>>();

  constructor(
    private readonly runtime: DockerRuntime,
    private readonly installDir: string,
    private readonly log: Logger,
  ) {}

  async ensure(spec: KindSpec, out: UserOutput): Promise<void> {
    if (await this.runtime.imageExists(spec.image)) return;
    let build = this.building.get(spec.kind);
    if (!build) {
      build = this.make(spec, out).finally(() => this.building.delete(spec.kind));
      this.building.set(spec.kind, build);
    } else {
      out.header(`Waiting for the ${spec.image} image another creation is making`);
    }
    await build;
  }

  private async make(spec: KindSpec, out: UserOutput): Promise<void> {
    out.header(`Making the ${spec.image} image from Debian's packages (first use only; about a minute)`);
    const code = await runScript(join(this.installDir, 'scripts', 'make-addon-image.sh'), [spec.kind], (line) => {
      this.log.info({ image: spec.image, line });
      // The script's own step lines are the user's progress; docker build's chatter stays in the log.
      if (/^(-----> | !     )/.test(line)) out.raw(line);
    });
    if (code !== 0) throw new RackError('addon_failed', `making the ${spec.image} image failed (status ${code}); the operator's log has the details`);
  }
}
