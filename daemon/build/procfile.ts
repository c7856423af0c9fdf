import { RackError } from '../rack-error.js';

const LINE = /^([A-Za-z0-9_-]+):\s*(.+)$/;

/** Parses a Procfile (`type: command` per line, `#` comments) into process type → command. */
export function parseProcfile(text: string): Record<string, string> {
  const types: Record<string, string> = {};
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) throw new RackError('build_failed', `Procfile line ${i + 1} is not "type: command": ${line.slice(0, 80)}`);
    types[m[1]!] = m[2]!.trim();
  }
  return types;
}
