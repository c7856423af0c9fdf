import { RackError } from '../rack-error.js';

/**
 * What an app's Dockerfile may do on a shared host, checked before Docker sees it. dockerd builds
 * with every image on the engine within reach and fetches remote sources from the host's network,
 * so a Dockerfile may start only FROM the stack image or a base the operator allows, may copy only
 * from its own earlier stages or those bases, and may not `ADD` a URL. Anything that could name an
 * image through a variable is refused: the check is on the text, not on what Docker substitutes.
 */

/**
 * The stack images (build and run), exactly: another tag of `rack/stack` would be the image of an
 * app named "stack" (a reserved name, as "stack-run" is).
 */
const STACK_REFS = ['rack/stack', 'rack/stack:latest', 'rack/stack-run', 'rack/stack-run:latest'];

export interface ParsedInstruction {
  /** 1-based line where the instruction starts. */
  line: number;
  /** Upper-case keyword. */
  keyword: string;
  /** The arguments, continuation lines joined with a space. */
  args: string;
}

/** Splits a Dockerfile into instructions: parser directives, comments and continuations handled. */
export function parseDockerfile(text: string): ParsedInstruction[] {
  const lines = text.split(/\r?\n/);
  let escape = '\\';
  let i = 0;
  // Parser directives: `# key=value` lines at the very top, before any blank line or instruction.
  for (; i < lines.length; i++) {
    const m = /^\s*#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$/.exec(lines[i]!);
    if (!m) break;
    if (m[1]!.toLowerCase() === 'escape' && (m[2] === '`' || m[2] === '\\')) escape = m[2];
  }
  const out: ParsedInstruction[] = [];
  let start = 0;
  let parts: string[] = [];
  for (; i < lines.length; i++) {
    const raw = lines[i]!;
    const trimmed = raw.trim();
    if (parts.length === 0) {
      if (trimmed === '' || trimmed.startsWith('#')) continue;
      start = i + 1;
    } else if (trimmed === '' || trimmed.startsWith('#')) {
      continue; // blank and comment lines inside a continuation are dropped, as Docker does
    }
    const body = raw.replace(/\s+$/, '');
    if (body.endsWith(escape)) {
      parts.push(body.slice(0, -1));
      continue;
    }
    parts.push(body);
    out.push(instruction(start, parts.join(' ')));
    parts = [];
  }
  if (parts.length > 0) out.push(instruction(start, parts.join(' ')));
  return out;
}

function instruction(line: number, text: string): ParsedInstruction {
  const m = /^\s*(\S+)\s*([\s\S]*)$/.exec(text)!;
  return { line, keyword: m[1]!.toUpperCase(), args: m[2]!.trim() };
}

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

/** Shell-form words, or the elements of the JSON (exec) form. */
function words(args: string): string[] {
  if (args.startsWith('[')) {
    try {
      const list = JSON.parse(args) as unknown;
      if (Array.isArray(list) && list.every((x) => typeof x === 'string')) return list as string[];
    } catch {
      // not JSON: Docker reads it as the shell form
    }
  }
  return args.split(/\s+/).filter((w) => w !== '');
}

/** Leading `--flag[=value]` words and the rest. */
function flags(args: string): { flags: Map<string, string[]>; rest: string } {
  const found = new Map<string, string[]>();
  let rest = args;
  for (;;) {
    const m = /^--([A-Za-z-]+)(?:=(\S*))?\s*/.exec(rest);
    if (!m) break;
    const name = m[1]!.toLowerCase();
    found.set(name, [...(found.get(name) ?? []), m[2] ?? '']);
    rest = rest.slice(m[0].length);
  }
  return { flags: found, rest };
}

const bases = (operatorBases: readonly string[]) =>
  `the stack image rack/stack${operatorBases.length > 0 ? ` or a base the operator allows (${operatorBases.join(', ')})` : ''}`;

/** Throws one clear `build_failed` line naming the first offending line; returns the instructions. */
export function checkDockerfile(text: string, operatorBases: readonly string[]): ParsedInstruction[] {
  const instructions = parseDockerfile(text);
  const stages: string[] = []; // lower-case stage names ('' when unnamed), by index
  const copySource = (line: number, keyword: string, from: string) => {
    if (from.includes('$')) throw refuse(line, `${keyword} --from may not use variables ("${from.slice(0, 80)}")`);
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
    switch (keyword) {
      case 'FROM': {
        if (nested) throw refuse(line, 'ONBUILD FROM is not allowed');
        const { rest } = flags(ins.args);
        const [image = '', as, name, ...extra] = words(rest);
        if (image === '') throw refuse(line, 'FROM names no image');
        if (image.includes('$')) throw refuse(line, `FROM may not use variables ("${image.slice(0, 80)}"): name the image`);
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
        const parsed = flags(ins.args);
        for (const from of parsed.flags.get('from') ?? []) copySource(line, keyword, from);
        if (keyword === 'ADD') {
          const sources = words(parsed.rest).slice(0, -1);
          for (const src of sources) {
            if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(src) || /^[^/\s]+@[^/\s]+:/.test(src)) {
              throw refuse(line, `ADD of a remote source (${src.slice(0, 80)}) is not allowed: download it in a RUN step, or COPY it from the repository`);
            }
            if (src.includes('$')) throw refuse(line, `ADD sources may not use variables ("${src.slice(0, 80)}")`);
          }
        }
        return;
      }
      case 'RUN': {
        for (const mount of flags(ins.args).flags.get('mount') ?? []) {
          for (const option of mount.split(',')) {
            const [key, value = ''] = option.split('=', 2) as [string, string?];
            if (key.toLowerCase() === 'from') copySource(line, 'RUN --mount', value);
          }
        }
        return;
      }
      case 'ONBUILD': {
        // Runs in a later build FROM this image: held to the same rules as the image's own steps.
        const inner = instruction(line, ins.args);
        if (inner.keyword === 'ONBUILD') throw refuse(line, 'ONBUILD ONBUILD is not allowed');
        check(inner, true);
        return;
      }
      default:
        return;
    }
  };
  for (const ins of instructions) check(ins, false);
  if (stages.length === 0) throw new RackError('build_failed', 'Dockerfile: no FROM line');
  return instructions;
}
