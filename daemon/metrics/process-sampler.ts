import { appEvents as defaultEvents, type AppEvents } from '../app-events.js';
import type { Logger } from '../log.js';
import type { MetricPoint, ProcessMetric } from '../store/records.js';
import type { CgroupUsage } from './cgroup-usage.js';
import { overMemoryQuota } from './memory-quota.js';
import { spanStart } from './metric-points.js';

/** What the sampler needs to know of a process (the runtime's ProcessInfo has it). */
export interface SampledProcess {
  id: string;
  /** The container's name, ending in the process's number (`web.1`); absent: the id stands in. */
  name?: string;
  /** web.1: what `ps` calls it; preferred to the name when given. */
  dyno?: string;
  app: string;
  type: string;
  running: boolean;
  restarts: number;
}

export interface SamplerDeps {
  list: () => Promise<SampledProcess[]>;
  usage: (id: string) => Promise<CgroupUsage | undefined>;
  record: (points: { app: string; point: MetricPoint }[]) => Promise<void>;
  logger: Logger;
  now?: () => number;
  /** Where an R14 is told (memory-quota.ts); rackd's one bus unless a test gives its own. */
  events?: AppEvents;
}

interface LastSample {
  cpuNs?: number;
  restarts: number;
  limitHits?: number;
  overQuota: boolean;
}

export const SAMPLE_EVERY_MS = 10_000;

/**
 * Samples every process of every app each 10 s: CPU (the growth of its cgroup's CPU time since the
 * last sample), memory in use, crash restarts (the growth of Docker's restart count), running or
 * not. A process's first sample gives no CPU figure; it has nothing to compare with. A process
 * found pressing on its memory limit is told as an R14 `crash`/`memory` event (memory-quota.ts).
 */
export class ProcessSampler {
  /** Per process id, what the last sample read; forgotten when the process is gone. */
  #last = new Map<string, LastSample>();
  #timer: NodeJS.Timeout | undefined;
  #sampling: Promise<void> | undefined;

  constructor(private readonly deps: SamplerDeps) {}

  start(): void {
    this.#timer = setInterval(() => void this.sample(), SAMPLE_EVERY_MS);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#sampling;
  }

  /** One round of samples, recorded; a round still under way is waited for instead. */
  sample(): Promise<void> {
    this.#sampling ??= this.#sample()
      .catch((err: unknown) => this.deps.logger.warn({ err }, 'metrics: sampling the processes failed'))
      .finally(() => (this.#sampling = undefined));
    return this.#sampling;
  }

  async #sample(): Promise<void> {
    const at = spanStart((this.deps.now ?? Date.now)(), 10);
    const processes = await this.deps.list();
    const next = new Map<string, LastSample>();
    const byApp = new Map<string, Record<string, ProcessMetric>>();
    for (const p of processes) {
      const usage = p.running ? await this.deps.usage(p.id) : undefined;
      const last = this.#last.get(p.id);
      const overQuota = usage !== undefined && overMemoryQuota(usage, last?.limitHits, last?.overQuota ?? false);
      next.set(p.id, { ...(usage === undefined ? {} : { cpuNs: usage.cpuNs, limitHits: usage.limitHits }), restarts: p.restarts, overQuota });
      if (overQuota && last?.overQuota !== true && usage?.limitBytes !== undefined) this.#tellR14(p, usage.memoryBytes, usage.limitBytes);
      const types = byApp.get(p.app) ?? {};
      byApp.set(p.app, types);
      // `samples` stays 0 until a cgroup is read: no figure (a Swarm's other machines) is not 0 MB.
      const m = (types[p.type] ??= { cpuMs: 0, memorySum: 0, samples: 0, memoryMax: 0, count: 0, running: 0, restarts: 0 });
      m.count += 1;
      if (p.running) m.running += 1;
      // A restarted container keeps its cgroup counter only on v2; a smaller reading means it started over.
      if (usage !== undefined && last?.cpuNs !== undefined && usage.cpuNs >= last.cpuNs) m.cpuMs += (usage.cpuNs - last.cpuNs) / 1e6;
      if (usage !== undefined) {
        // One sample of the type: its processes' memory summed (so the mean over samples stays the type's).
        m.samples = 1;
        m.memorySum += usage.memoryBytes;
        m.memoryMax = m.memorySum;
      }
      if (last !== undefined && p.restarts > last.restarts) m.restarts += p.restarts - last.restarts;
    }
    this.#last = next;
    await this.deps.record([...byApp].map(([app, processes]) => ({ app, point: { at, span: 10, processes } })));
  }

  #tellR14(p: SampledProcess, memoryBytes: number, limitBytes: number): void {
    const process = p.dyno ?? `${p.type}.${p.name?.split('.').pop() ?? p.id.slice(0, 12)}`;
    // As the R15 of process-events.ts: webhooks hear of it as a crash of kind `memory`, drains and
    // `logs` as Heroku's error line (drains/event-lines.ts).
    (this.deps.events ?? defaultEvents).emit({ kind: 'crash', app: p.app, action: 'memory', data: { process, type: p.type, error: 'R14', memoryBytes, limitBytes } });
  }
}
