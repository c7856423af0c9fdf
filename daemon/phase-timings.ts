/**
 * Where the time of a push, config change, rollback or scale went, phase by phase, in the stage
 * words (receive, build, release, start, healthy, switch, drain). Users see it as one line; it is
 * kept with builds and releases for `--json`.
 */
export const PHASES = ['receive', 'build', 'release', 'start', 'healthy', 'switch', 'drain'] as const;
export type Phase = (typeof PHASES)[number];

export type Timings = Partial<Record<Phase, number>> & { total?: number };

export class PhaseTimings {
  private readonly ms: Partial<Record<Phase, number>> = {};
  private readonly began: number;

  constructor(began = Date.now()) {
    this.began = began;
  }

  add(phase: Phase, ms: number): void {
    this.ms[phase] = (this.ms[phase] ?? 0) + ms;
  }

  async time<T>(phase: Phase, task: () => Promise<T>): Promise<T> {
    const start = Date.now();
    try {
      return await task();
    } finally {
      this.add(phase, Date.now() - start);
    }
  }

  snapshot(): Timings {
    return { ...this.ms, total: Date.now() - this.began };
  }

  line(): string {
    return formatTimings(this.snapshot());
  }
}

/** `receive 0.12 s · build 1.30 s · start 0.35 s · ... · total 2.41 s` */
export function formatTimings(t: Timings): string {
  const parts = PHASES.filter((p) => t[p] !== undefined).map((p) => `${p} ${seconds(t[p]!)}`);
  return [...parts, ...(t.total !== undefined ? [`total ${seconds(t.total)}`] : [])].join(' · ');
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
