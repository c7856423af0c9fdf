import { RackError } from '../rack-error.js';
import { instruction, parseDockerfile, type ParsedDockerfile, type ParsedInstruction } from './dockerfile-parser.js';

/**
 * What an app's Dockerfile may do on a shared host, checked before Docker sees it. dockerd builds
 * with every image on the engine within reach and fetches remote sources from the host's network,
 * so a Dockerfile may start only FROM the stack image or a base the operator allows, may copy only
 * from its own earlier stages or those bases, and may not `ADD` a URL. Anything that could name an
 * image through a variable, quotes or escapes is refused: the check is on the text as Docker's own
 * parser splits it (dockerfile-parser.ts), not on what Docker substitutes.
 */

/**
 * The stack images (build and run), exactly: another tag of `rack/stack` would be the image of an
 * app named "stack" (a reserved name, as "stack-run" is).
 */
const STACK_REFS = ['rack/stack', 'rack/stack:latest', 'rack/stack-run', 'rack/stack-run:latest'];

/** `docker.io/library/debian:bookworm` → `{ name: 'debian', tag: 'bookworm' }`. */
export function normalizeImageRef(ref: string): { name: string; tag: string | undefined; digest: string | undefined } {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  rest = rest.replace(/^(docker\.io|index\.docker\.io)\//, '');
  if (!rest.includes('/') || rest.startsWith('library/')) rest = rest.replace(/^library\//, '');
  return { name: rest, tag: tag ?? (digest === undefined ? 'latest' : undefined), digest };
}

/**
 * True when `ref` is the stack image or one of the operator's bases. A base listed without a tag
 * allows every tag of that name; with a tag or digest, only that one.
 */
export function isAllowedBase(ref: string, operatorBases: readonly string[]): boolean {
  const want = normalizeImageRef(ref);
  const same = (allowed: string, anyTag: boolean) => {
    const a = normalizeImageRef(allowed);
    if (a.name !== want.name) return false;
    if (anyTag && !/[:@]/.test(allowed.slice(allowed.lastIndexOf('/') + 1))) return want.digest === undefined;
    return a.tag === want.tag && a.digest === want.digest;
  };
  if (ref.toLowerCase() === 'scratch') return true;
  if (STACK_REFS.some((s) => same(s, false))) return true;
  return operatorBases.some((b) => same(b, true));
}

const refuse = (line: number, why: string) => new RackError('build_failed', `Dockerfile line ${line}: ${why}`);

/**
 * Shell-form words, or the elements of the JSON (exec) form. Docker reads `[` as JSON up to the end
 * of the first value and ignores what follows, and falls back to words when it is not JSON: text
 * that starts with `[` must be exactly one JSON array of strings, so both readings agree.
 */
function words(line: number, args: string): string[] {
  if (args.startsWith('[')) {
    let list: unknown;
    try {
      list = JSON.parse(args);
    } catch {
      throw refuse(line, 'arguments starting with "[" must be one JSON array of strings');
    }
    if (Array.isArray(list) && list.every((x) => typeof x === 'string')) return list as string[];
    throw refuse(line, 'arguments starting with "[" must be one JSON array of strings');
  }
  return args.split(/[\t ]+/).filter((w) => w !== '');
}

/** `--name=value` flags by name (Docker's flag names are case-sensitive). */
function flagValues(ins: ParsedInstruction, name: string): string[] {
  return ins.flags.filter((f) => f === `--${name}` || f.startsWith(`--${name}=`)).map((f) => f.slice(name.length + 3));
}

/**
 * An image or stage name as Docker takes it after its own word processing: with no quote, escape
 * or variable in it, the text is the name. Anything else is refused, never interpreted.
 */
const PLAIN_REF = /^[A-Za-z0-9][A-Za-z0-9._\/:@-]*$/;

const bases = (operatorBases: readonly string[]) =>
  `the stack image rack/stack${operatorBases.length > 0 ? ` or a base the operator allows (${operatorBases.join(', ')})` : ''}`;

/** Throws one clear `build_failed` line naming the first offending line; returns the parse. */
export function checkDockerfile(text: string, operatorBases: readonly string[]): ParsedDockerfile {
  const parsed = parseDockerfile(text);
  const stages: string[] = []; // lower-case stage names ('' when unnamed), by index
  const copySource = (line: number, keyword: string, from: string) => {
    if (from.includes('$')) throw refuse(line, `${keyword} --from may not use variables ("${from.slice(0, 80)}")`);
    if (!PLAIN_REF.test(from)) throw refuse(line, `${keyword} --from=${from.slice(0, 80)}: name a stage or image plainly (no quotes or escapes)`);
    if (/^\d+$/.test(from)) {
      if (Number(from) < stages.length - 1) return;
      throw refuse(line, `${keyword} --from=${from} names no earlier build stage`);
    }
    if (stages.slice(0, -1).includes(from.toLowerCase())) return;
    if (isAllowedBase(from, operatorBases)) return;
    throw refuse(line, `${keyword} --from=${from.slice(0, 80)} is not an earlier build stage or ${bases(operatorBases)}`);
  };
  const check = (ins: ParsedInstruction, nested: boolean): void => {
    const { line, keyword } = ins;
    if (/^(RUN|COPY|ADD)$/.test(keyword) && /(^|\s)<<-?["']?[A-Za-z_]/.test(ins.args)) {
      throw refuse(line, 'here-documents (<<EOF) are not supported: put the script in a file and COPY it');
    }
    switch (keyword) {
      case 'FROM': {
        if (nested) throw refuse(line, 'ONBUILD FROM is not allowed');
        const [image = '', as, name, ...extra] = ins.args.split(/[\t ]+/).filter((w) => w !== '');
        if (image === '') throw refuse(line, 'FROM names no image');
        if (image.includes('$')) throw refuse(line, `FROM may not use variables ("${image.slice(0, 80)}"): name the image`);
        if (!PLAIN_REF.test(image)) throw refuse(line, `FROM ${image.slice(0, 80)}: name the image plainly (no quotes or escapes)`);
        const stageName = as?.toLowerCase() === 'as' && name !== undefined && extra.length === 0 ? name.toLowerCase() : '';
        if (as !== undefined && !/^[a-z][a-z0-9_.-]*$/.test(stageName)) throw refuse(line, 'FROM takes an image and an optional "AS name"');
        if (!stages.includes(image.toLowerCase()) && !isAllowedBase(image, operatorBases)) {
          throw refuse(line, `FROM ${image.slice(0, 80)} is not allowed: start FROM ${bases(operatorBases)}`);
        }
        stages.push(stageName);
        return;
      }
      case 'COPY':
      case 'ADD': {
        if (stages.length === 0 && !nested) throw refuse(line, `${keyword} before any FROM`);
        for (const from of flagValues(ins, 'from')) copySource(line, keyword, from);
        if (keyword === 'ADD') {
          for (const src of words(line, ins.args).slice(0, -1)) {
            // Docker takes quotes and escapes out of a source before it asks whether it is a URL:
            // a source that could become one (a ":" anywhere) is refused, whatever surrounds it.
            if (src.includes('$')) throw refuse(line, `ADD sources may not use variables ("${src.slice(0, 80)}")`);
            if (/[:"'\\`]/.test(src) || /^github\.com\//i.test(src)) {
              throw refuse(line, `ADD of a remote source (${src.slice(0, 80)}) is not allowed: download it in a RUN step, or COPY it from the repository`);
            }
          }
        }
        return;
      }
      case 'RUN': {
        for (const mount of flagValues(ins, 'mount')) {
          for (const option of mount.split(',')) {
            const [key, value = ''] = option.split('=', 2) as [string, string?];
            if (key.toLowerCase() === 'from') copySource(line, 'RUN --mount', value);
          }
        }
        return;
      }
      case 'ONBUILD': {
        // Runs in a later build FROM this image: held to the same rules as the image's own steps.
        if (ins.flags.length > 0) throw refuse(line, 'ONBUILD takes no flags');
        const inner = instruction(line, ins.args);
        if (inner.keyword === 'ONBUILD') throw refuse(line, 'ONBUILD ONBUILD is not allowed');
        check(inner, true);
        return;
      }
      default:
        return;
    }
  };
  for (const ins of parsed.instructions) check(ins, false);
  if (stages.length === 0) throw new RackError('build_failed', 'Dockerfile: no FROM line');
  return parsed;
}
