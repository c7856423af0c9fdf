/**
 * Which dynos a rollout starts, stops and leaves alone: the decision alone, pure, so its cases are
 * tested without a runtime (supervisor.ts acts on it). A dyno is `TYPE.N`; the numbers wanted of a
 * type are 1..count less the stopped ones, so a scale up takes the lowest free numbers, a scale
 * down gives up the highest, and a replacement takes the number of what it replaces.
 */
export interface LiveDyno {
  id: string;
  type: string;
  dyno: string;
}

export interface DynoPlanInput<P extends LiveDyno> {
  /** Instance counts by type. */
  formation: Readonly<Record<string, number>>;
  /** Dynos stopped with ps:stop: not started again until the next scale or release. */
  stopped?: readonly string[];
  /** The app's processes now (none of them draining). */
  live: readonly P[];
  /** Types (web) or dynos (web.1) in scope; absent: all. Whatever is out of scope is left alone. */
  only?: readonly string[];
  /**
   * Keep the dynos in scope that already run where the formation wants them: start only what is
   * missing and stop only what is too many (ps:scale, ps:stop). Otherwise every one in scope is
   * replaced (a release, ps:restart).
   */
  changedOnly?: boolean;
  /**
   * A type is started and stopped as a whole (a Swarm service holds all of a type's slots): a
   * type with any change is replaced whole, one without is left alone.
   */
  wholeTypes?: boolean;
}

export interface DynoPlan<P extends LiveDyno> {
  /** New processes to start, by type and number. */
  start: { type: string; index: number }[];
  /** Processes to drain once the new ones serve. */
  stop: P[];
  /** Processes left as they are. */
  keep: P[];
}

export function dynoName(type: string, index: number): string {
  return `${type}.${index}`;
}

/** `web.1` → { type: 'web', index: 1 }; anything else undefined. */
export function parseDyno(name: string): { type: string; index: number } | undefined {
  const m = /^([A-Za-z0-9_-]{1,30})\.([1-9]\d{0,2})$/.exec(name);
  return m ? { type: m[1]!, index: Number(m[2]) } : undefined;
}

export function planDynos<P extends LiveDyno>(input: DynoPlanInput<P>): DynoPlan<P> {
  const stopped = new Set(input.stopped ?? []);
  const only = input.only;
  const typeInScope = (type: string) => !only || only.includes(type) || only.some((o) => parseDyno(o)?.type === type);
  const dynoInScope = (type: string, dyno: string) => !only || only.includes(type) || only.includes(dyno);
  const wanted = new Map<string, number[]>();
  for (const [type, count] of Object.entries(input.formation)) {
    const indices: number[] = [];
    for (let i = 1; i <= count; i++) if (!stopped.has(dynoName(type, i))) indices.push(i);
    wanted.set(type, indices);
  }
  const start: DynoPlan<P>['start'] = [];
  const stop: P[] = [];
  const keep: P[] = [];
  const types = new Set([...wanted.keys(), ...input.live.map((p) => p.type)]);
  for (const type of types) {
    const live = input.live.filter((p) => p.type === type);
    const indices = wanted.get(type) ?? [];
    if (!typeInScope(type)) {
      keep.push(...live);
      continue;
    }
    // What is kept: one process per wanted number, already running, when only changes are made.
    const kept = new Map<string, P>();
    if (input.changedOnly) {
      for (const p of live) {
        const i = parseDyno(p.dyno)?.index;
        if (i !== undefined && indices.includes(i) && !kept.has(p.dyno) && dynoInScope(type, p.dyno)) kept.set(p.dyno, p);
      }
    }
    let typeStart = indices.filter((i) => dynoInScope(type, dynoName(type, i)) && !kept.has(dynoName(type, i)));
    let typeStop = live.filter((p) => dynoInScope(type, p.dyno) && kept.get(p.dyno) !== p);
    let typeKeep = live.filter((p) => !typeStop.includes(p));
    if (input.wholeTypes && (typeStart.length > 0 || typeStop.length > 0)) {
      typeStart = indices;
      typeStop = live;
      typeKeep = [];
    }
    start.push(...typeStart.map((index) => ({ type, index })));
    stop.push(...typeStop);
    keep.push(...typeKeep);
  }
  return { start, stop, keep };
}
