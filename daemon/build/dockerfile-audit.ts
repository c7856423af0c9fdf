import { RackError } from '../rack-error.js';
import { LABEL } from '../runtime/labels.js';
import type { ParsedDockerfile } from './dockerfile-parser.js';

/**
 * What the engine did with a Dockerfile, held against what rack checked. The check of the text
 * (dockerfile-policy.ts) is what keeps a build off other apps' images; these two catch a reading
 * of the text that differs from Docker's anyway, once as the engine announces each step and once
 * on the image it made.
 */

/**
 * Checks each `Step I/N : TEXT` the classic builder prints before it runs the step: N and every
 * step's instruction must be rack's (the steps the engine adds for the build's labels left out).
 */
export function stepCheck(parsed: ParsedDockerfile): (index: number, total: number, text: string) => string | undefined {
  const keywords = parsed.instructions.map((i) => i.keyword);
  return (index, total, text) => {
    const keyword = /^\S+/.exec(text)?.[0].toUpperCase() ?? '';
    if (total === keywords.length && keywords[index - 1] === keyword) return undefined;
    return `Docker read the Dockerfile otherwise than rack's check (step ${index}/${total}: ${text.slice(0, 80)}); the build was stopped`;
  };
}

interface Ancestor {
  id: string;
  tags: string[];
  labels: Record<string, string>;
}

/**
 * The parent chain of a Dockerfile app's image must reach the stack image or an operator's base
 * (`allowedIds`) through this build's own steps only: an image with a name, or one carrying
 * another app's label (which every step built on it inherits), on the way means the build
 * started from something the policy never allowed. A chain with neither is a FROM scratch build.
 */
export function checkAncestry(chain: readonly Ancestor[], allowedIds: ReadonlySet<string>, app: string): void {
  for (const image of chain.slice(1)) {
    if (allowedIds.has(image.id)) return;
    const owner = image.labels[LABEL.app];
    if (image.tags.length > 0 || (owner !== undefined && owner !== app)) {
      const name = image.tags[0] ?? `an image of app ${owner}`;
      throw new RackError('build_failed', `the build started from ${name.slice(0, 120)}, which is not an allowed base; the image was removed`);
    }
  }
}
