/** As on Heroku: one web process; other types wait to be scaled; `release` is a phase, not a process. */
export function defaultFormation(processTypes: Record<string, string>): Record<string, number> {
  const formation: Record<string, number> = {};
  for (const type of Object.keys(processTypes)) if (type !== 'release') formation[type] = type === 'web' ? 1 : 0;
  return formation;
}

/** What runs for these process types: the app's scaled counts (ps:scale) over the defaults. */
export function resolveFormation(processTypes: Record<string, string>, scaled: Record<string, number> = {}): Record<string, number> {
  const formation = defaultFormation(processTypes);
  for (const type of Object.keys(formation)) if (scaled[type] !== undefined) formation[type] = scaled[type];
  return formation;
}
