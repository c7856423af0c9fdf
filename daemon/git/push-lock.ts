import { AppLock } from '../app-lock.js';

/**
 * Serialises pushes to one app end to end: from before git-receive-pack is spawned until it has
 * exited and its ref update has been checked (`builds:create` takes it too, to read a settled
 * branch). Why so wide: receive-pack advertises the branch head when it starts and only checks it
 * when it updates the ref, after the pre-receive hook has already built and released. Two pushes
 * from one parent would both release and git would then refuse one of them, leaving a release
 * serving that the branch never got. Held from the start, a waiting push is advertised the state
 * after the one before it, so git itself refuses (or force-updates) it before anything is built.
 *
 * It is a separate lock from the DeployLock, always taken first: the pre-receive handler takes the
 * DeployLock inside it, and taking the two in one order cannot deadlock.
 */
export class PushLock extends AppLock {}
