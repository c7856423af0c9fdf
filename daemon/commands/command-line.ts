import { parse } from 'shell-quote';
import { RackError } from '../rack-error.js';
import { MAX_COMMAND_BYTES } from '../ssh/oversized-request.js';

export { MAX_COMMAND_BYTES };

/**
 * Splits the command string ssh sends into words, honouring quotes as a shell would, but runs
 * nothing: `$VAR` stays literal and any shell operator (`;`, `|`, `>`, ...) is refused.
 */
export function tokenize(command: string): string[] {
  if (Buffer.byteLength(command) > MAX_COMMAND_BYTES) {
    throw new RackError('bad_command', `command line too long (max ${MAX_COMMAND_BYTES} bytes)`);
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
