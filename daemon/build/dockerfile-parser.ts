import { RackError } from '../rack-error.js';

/**
 * A Dockerfile read the way dockerd reads it, so that the policy checks the very instructions the
 * engine will run. This follows the parser the classic builder shares with BuildKit
 * (moby/buildkit frontend/dockerfile/parser): parser directives, comments, line continuations and
 * builder flags. Where two versions of that parser differ, or where Go and JavaScript disagree on
 * what whitespace is, the Dockerfile is refused rather than guessed at: a text read one way here
 * and another way by Docker is how a build reached other apps' images (issue 27).
 */

export interface ParsedInstruction {
  /** 1-based line where the instruction starts. */
  line: number;
  /** Upper-case keyword. */
  keyword: string;
  /** Builder flags (`--from=x`) as Docker reads them: quotes and backslashes taken out. */
  flags: string[];
  /** The arguments after the flags, trimmed; continuation lines joined as Docker joins them. */
  args: string;
}

export interface ParsedDockerfile {
  escape: '\\' | '`';
  instructions: ParsedInstruction[];
}

const refuse = (line: number, why: string) => new RackError('build_failed', `Dockerfile line ${line}: ${why}`);

/**
 * Whitespace JavaScript and Go (unicode.IsSpace) do not agree on, or that only some of Docker's
 * splitters treat as a separator (\v, \f, a lone \r). Refused anywhere: no Dockerfile needs them.
 */
const ODD_SPACE = /[\v\f\r\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff\0]/;
/** Go's `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`, with \s = [\t\n\f\r ] (\f and \r refused before). */
const DIRECTIVE = /^#[\t ]*([a-zA-Z][a-zA-Z0-9]*)[\t ]*=[\t ]*(.+?)[\t ]*$/;
const KNOWN_DIRECTIVES = new Set(['escape', 'syntax', 'check']);

/** Splits a Dockerfile into instructions exactly as Docker does, or refuses what it cannot be sure of. */
export function parseDockerfile(source: string): ParsedDockerfile {
  // Docker drops a UTF-8 byte-order mark on the first line only, and splits on \n dropping a \r before it.
  const lines = source.replace(/^\ufeff/, '').split('\n').map((l) => l.replace(/\r$/, ''));
  for (const [i, l] of lines.entries()) {
    const odd = ODD_SPACE.exec(l);
    if (odd) throw refuse(i + 1, `unusual whitespace or control character U+${odd[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}; use spaces and tabs`);
  }
  let escape: '\\' | '`' = '\\';
  const seen = new Set<string>();
  let i = 0;
  // Directives: only at the very top; the first line that is not one (a blank line, a comment, an
  // unknown key, an instruction) ends them, and each may be given once.
  for (; i < lines.length; i++) {
    const m = DIRECTIVE.exec(lines[i]!.replace(/^[\t ]+/, ''));
    if (!m) break;
    const key = m[1]!.toLowerCase();
    if (!KNOWN_DIRECTIVES.has(key)) break;
    if (seen.has(key)) throw refuse(i + 1, `only one ${key} parser directive can be used`);
    // Older parsers (Docker 20.10's) do not know `check` and stop there; newer ones read on.
    if (seen.has('check')) throw refuse(i + 1, 'put the check parser directive last: Docker versions disagree on what follows it');
    seen.add(key);
    if (key === 'escape') {
      if (m[2] !== '\\' && m[2] !== '`') throw refuse(i + 1, "the escape parser directive takes \\ or `");
      escape = m[2];
    }
  }
  const e = escape === '\\' ? '\\\\' : '`';
  const continued = new RegExp(`${e}[ \\t]*$`);
  // Docker versions differ on a line ending in two escapes, or in an escape alone: refused.
  const ambiguous = new RegExp(`(^|${e})${e}[ \\t]*$`);
  const isComment = (l: string) => /^[\t ]*#/.test(l);
  const instructions: ParsedInstruction[] = [];
  for (; i < lines.length; i++) {
    const first = lines[i]!.replace(/^[\t ]+/, '');
    if (first === '' || first.startsWith('#')) continue;
    const start = i + 1;
    let text = '';
    let line = first;
    for (;;) {
      if (ambiguous.test(line)) throw refuse(i + 1, `a line ending in "${escape}${escape}" or in "${escape}" alone is read differently by Docker versions`);
      if (!continued.test(line)) {
        text += line;
        break;
      }
      text += line.replace(continued, '');
      // Comment and blank lines inside a continuation are skipped; the next line is joined as it is.
      do i++;
      while (i < lines.length && (isComment(lines[i]!) || /^[\t ]*$/.test(lines[i]!)));
      if (i >= lines.length) break;
      line = lines[i]!;
    }
    instructions.push(instruction(start, text));
  }
  return { escape, instructions };
}

/** One instruction's text: keyword, builder flags and arguments, as Docker's splitCommand does. */
export function instruction(line: number, text: string): ParsedInstruction {
  const trimmed = text.replace(/^[\t ]+|[\t ]+$/g, '');
  const m = /^(\S+)(?:[\t ]+([\s\S]*))?$/.exec(trimmed);
  if (!m) throw refuse(line, 'empty instruction');
  const { flags, rest } = builderFlags(m[2] ?? '');
  return { line, keyword: m[1]!.toUpperCase(), flags, args: rest.replace(/^[\t ]+|[\t ]+$/g, '') };
}

/**
 * Docker's extractBuilderFlags: leading words that start with `--`, in which quotes group and a
 * backslash takes the next character as it is (`--fr\om=x` is `--from=x`); `--` alone ends them.
 */
export function builderFlags(line: string): { flags: string[]; rest: string } {
  const words: string[] = [];
  let pos = 0;
  for (;;) {
    while (pos < line.length && (line[pos] === ' ' || line[pos] === '\t')) pos++;
    if (!line.startsWith('--', pos)) return { flags: words, rest: line.slice(pos) };
    let word = '';
    let blankOk = false;
    let quote = '';
    for (; pos < line.length; pos++) {
      let ch = line[pos]!;
      if (quote === '' && (ch === ' ' || ch === '\t')) break;
      if (quote === '' && (ch === '"' || ch === "'")) {
        quote = ch;
        blankOk = true;
        continue;
      }
      if (quote !== '' && ch === quote) {
        quote = '';
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === line.length) continue;
        ch = line[++pos]!;
      }
      word += ch;
    }
    if (word === '--') return { flags: words, rest: line.slice(pos) };
    if (blankOk || word.length > 0) words.push(word);
    if (pos >= line.length) return { flags: words, rest: '' };
  }
}
