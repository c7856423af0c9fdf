import { parse } from 'shell-quote';
import { RackError } from '../rack-error.js';

/** Longest command line rack reads; config values have their own, smaller limits. */
export const MAX_COMMAND_BYTES = 256 * 1024;

/**
 * Splits the command string ssh sends into words, honouring quotes as a shell would, but runs
 * nothing: `$VAR` stays literal and any shell operator (`;`, `|`, `>`, ...) is refused.
 */
export function tokenize(command: string): string[] {
  if (Buffer.byteLength(command) > MAX_COMMAND_BYTES) {
    throw new RackError('bad_command', `command line too long (over ${MAX_COMMAND_BYTES / 1024} KiB)`);
  }
  if (command.includes('\0')) throw new RackError('bad_command', 'command line contains a NUL byte');
  const words: string[] = [];
  for (const token of parse(command, (name) => `$${name}`)) {
    if (typeof token === 'string') words.push(token);
    else if ('op' in token && token.op === 'glob') words.push(token.pattern);
    else if ('comment' in token) throw new RackError('bad_command', 'comments (#) are not allowed in commands; quote the value');
    else throw new RackError('bad_command', `shell operator "${token.op}" is not allowed; quote the value if it is data`);
  }
  return words;
}
