import { AppLock } from './app-lock.js';

/**
 * Per-app serialisation, as Dokku's deploy lock: builds, config changes, rollbacks, scales and
 * restarts of one app run one after another, while other apps proceed.
 */
export class DeployLock extends AppLock {}
