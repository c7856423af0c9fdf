import type Docker from 'dockerode';
import { LABEL } from './labels.js';
import type { Owner } from './owner.js';

export type ContainerRole = 'build' | 'release' | 'run' | 'process' | 'addon';

export interface OwnedContainer {
  id: string;
  name: string;
  app: string;
  role: ContainerRole;
}

/** Removes a container whatever its state; gone already is fine. */
export async function removeContainer(docker: Docker, id: string): Promise<void> {
  try {
    await docker.getContainer(id).remove({ force: true, v: true });
  } catch (err) {
    const code = (err as { statusCode?: number }).statusCode;
    if (code !== 404 && code !== 409) throw err; // gone already, or removal already under way
  }
}

/** Every container this rack made (of one app, or of some roles), found by its labels alone. */
export async function ownedContainers(docker: Docker, owner: Owner, opts: { app?: string; roles?: ContainerRole[] } = {}): Promise<OwnedContainer[]> {
  const label = owner.filter();
  if (opts.app !== undefined) label.push(`${LABEL.app}=${opts.app}`);
  const list = await docker.listContainers({ all: true, filters: { label } });
  return list
    .map((c) => ({
      id: c.Id,
      name: (c.Names?.[0] ?? '').replace(/^\//, ''),
      app: c.Labels?.[LABEL.app] ?? '',
      role: (c.Labels?.[LABEL.role] ?? 'process') as ContainerRole,
    }))
    .filter((c) => !opts.roles || opts.roles.includes(c.role));
}
