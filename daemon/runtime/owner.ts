import { LABEL } from './labels.js';

/**
 * Who owns what on the engine: this daemon's instance ID (kept in RACK_HOME) goes on every
 * container, image and network it makes, so two rackds on one engine never see, adopt or remove
 * each other's things, and nothing without the labels is ever touched.
 */
export interface Owner {
  instance: string;
  labels(extra: Record<string, string>): Record<string, string>;
  /** The label filter that selects what this daemon made, plus `extra` conditions. */
  filter(...extra: string[]): string[];
}

export function owner(instance: string): Owner {
  return {
    instance,
    labels: (extra) => ({ [LABEL.managed]: 'true', [LABEL.instance]: instance, ...extra }),
    filter: (...extra) => [`${LABEL.managed}=true`, `${LABEL.instance}=${instance}`, ...extra],
  };
}
