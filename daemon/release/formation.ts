// Process type names come from Procfiles and ps:scale: they are looked up as own keys only and
// objects are built with fromEntries, so `constructor` or `__proto__` is a name like any other.

/**
 * As on Heroku: one web process; other types wait to be scaled; `release` is a phase, not a
 * process. app.json's `formation` (kept with the release as `appFormation`) replaces those defaults.
 */
export function defaultFormation(processTypes: Record<string, string>, appFormation: Record<string, number> = {}): Record<string, number> {
  return Object.fromEntries(
    Object.keys(processTypes)
      .filter((t) => t !== 'release')
      .map((t) => [t, Object.hasOwn(appFormation, t) ? appFormation[t]! : t === 'web' ? 1 : 0]),
  );
}

/** What runs for a release: the app's scaled counts (ps:scale) over app.json's formation, over the defaults. */
export function resolveFormation(
  release: { processTypes: Record<string, string>; appFormation?: Record<string, number> },
  scaled: Record<string, number> = {},
): Record<string, number> {
  return Object.fromEntries(
    Object.entries(defaultFormation(release.processTypes, release.appFormation)).map(([t, n]) => [t, Object.hasOwn(scaled, t) ? scaled[t]! : n]),
  );
}

/** Whether the release has this process type (its own, not something every object inherits). */
export function hasProcessType(processTypes: Record<string, string>, type: string): boolean {
  return Object.hasOwn(processTypes, type);
}

/** Processes a formation runs in all. */
export function totalProcesses(formation: Record<string, number>): number {
  return Object.values(formation).reduce((sum, n) => sum + n, 0);
}
