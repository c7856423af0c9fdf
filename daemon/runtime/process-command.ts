import type { Builder } from '../store/records.js';

export type { Builder };

/**
 * How a process command becomes a container command. Buildpack images run it through the
 * launcher (which sources `.profile.d`); Dockerfile images have no launcher, so a Procfile command
 * goes through the image's `/bin/sh`, and an empty command means the image's own CMD.
 */
export function containerCommand(builder: Builder | undefined, command: string): string[] | undefined {
  if (builder === 'dockerfile') return command === '' ? undefined : ['/bin/sh', '-c', command];
  return ['rack-launch', command];
}
