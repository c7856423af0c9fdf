import type { ContainerRole, OwnedContainer } from './containers.js';
import type { ProcessDriver } from './docker-processes.js';
import type { TaskSpec } from './docker-tasks.js';

export type { ProcessDriver, ProcessEvent, ProcessInfo, ProcessSpec } from './docker-processes.js';

/** One-off containers run to completion: here, a release's release phase. */
export interface TaskRunner {
  runTask(spec: TaskSpec): Promise<{ container: string; exitCode: number }>;
}

/** Each app's own network, the only one its processes, builds and release phases join. */
export interface NetworkPlan {
  ensure(app: string): Promise<string>;
  /** Apps that have a network of this rack. */
  apps(): Promise<string[]>;
  remove(app: string): Promise<void>;
}

/** Images the runtime holds (a release's image may have been pruned). */
export interface ImageStore {
  exists(ref: string): Promise<boolean>;
}

/**
 * What the supervisor (and the pipeline) needs of a runtime, as parts (Convox's provider interface is the model):
 * DockerRuntime is the real one, test/support/fake-runtime.ts keeps processes in memory so the
 * supervisor's failure paths are tested without an engine.
 */
export interface Runtime {
  readonly processes: ProcessDriver;
  readonly tasks: TaskRunner;
  readonly networks: NetworkPlan;
  readonly images: ImageStore;
  /** App processes run as services on a Swarm's workers: Swarm restarts and moves them. */
  readonly swarm: boolean;
  /** The network an app's processes join: its bridge on one machine, its overlay on a Swarm. */
  processNetwork(app: string): Promise<string>;
  /** Containers this rack made, found by label: what clean-up at start works from. */
  ownedContainers(opts?: { app?: string; roles?: ContainerRole[] }): Promise<OwnedContainer[]>;
  removeContainer(id: string): Promise<void>;
}
