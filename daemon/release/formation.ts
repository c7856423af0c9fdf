/** As on Heroku: one web process; other types wait to be scaled; `release` is a phase, not a process. */
export function defaultFormation(processTypes: Record<string, string>): Record<string, number> {
  const formation: Record<string, number> = {};
  for (const type of Object.keys(processTypes)) if (type !== 'release') formation[type] = type === 'web' ? 1 : 0;
  return formation;
}
