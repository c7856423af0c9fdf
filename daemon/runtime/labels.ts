/**
 * Labels on every container and image rack makes. They are how a restarted daemon finds what it
 * runs, and how it knows never to touch anything else on the engine.
 */
export const LABEL = {
  managed: 'rack.managed',
  instance: 'rack.instance',
  app: 'rack.app',
  release: 'rack.release',
  build: 'rack.build',
  type: 'rack.type',
  /** The process's name in `ps` and the logs (web.1): a restarted rackd keeps the numbers it finds. */
  dyno: 'rack.dyno',
  role: 'rack.role',
  /** The writable space a container was given, in MiB (disk-limit.ts); Docker keeps no record of it. */
  disk: 'rack.disk',
} as const;


