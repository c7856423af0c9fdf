import type { Command } from './command.js';

/** `help NAME` and `NAME --help`: the usage, what it does, and a line to copy. */
export function commandHelp(command: Pick<Command, 'name' | 'usage' | 'summary' | 'example'>): string[] {
  return [
    `Usage: ssh rack ${command.usage}`,
    '',
    `  ${command.summary}`,
    ...(command.example === undefined ? [] : ['', 'Example:', `  ssh rack ${command.example}`]),
  ];
}

/**
 * Edit distance with transpositions (optimal string alignment): `cofnig` is one step from
 * `config`, as a typo is, where plain Levenshtein counts two.
 */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      row.push(best);
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}

/**
 * The command a mistyped name most likely meant, if one is close enough to be a typo (a third of
 * its letters at most, and never more than three) and no other is as close.
 */
export function suggestCommand(word: string, names: readonly string[]): string | undefined {
  const typed = word.toLowerCase().slice(0, 60);
  const limit = Math.min(3, Math.max(1, Math.floor(typed.length / 3)));
  let best: string | undefined;
  let bestDistance = Infinity;
  let tie = false;
  for (const name of names) {
    const d = editDistance(typed, name);
    if (d < bestDistance) {
      [best, bestDistance, tie] = [name, d, false];
    } else if (d === bestDistance) {
      tie = true;
    }
  }
  return best !== undefined && bestDistance <= limit && !tie ? best : undefined;
}
