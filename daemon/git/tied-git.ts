import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

let setpriv: string | false | undefined;

/** util-linux's setpriv, looked up once on PATH; false when this host has none. */
function findSetpriv(): string | false {
  if (setpriv === undefined) {
    setpriv = false;
    for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
      try {
        accessSync(join(dir, 'setpriv'), constants.X_OK);
        setpriv = join(dir, 'setpriv');
        break;
      } catch {
        // not in this directory
      }
    }
  }
  return setpriv;
}

/**
 * Spawns a git program that dies with rackd, even when rackd is killed with SIGKILL and runs no
 * code on its way out. `setpriv --pdeathsig TERM` asks the kernel (PR_SET_PDEATHSIG) to signal git
 * when its parent goes, then execs git in the same process, so `child.kill()` still reaches git.
 * TERM rather than KILL: git's own handler then removes the push's quarantine and stops the
 * children it cleans up on exit before it dies (an unpack-objects still writing loose objects can
 * leave part of the quarantine behind: the sweep at start takes that).
 * Why not the alternatives: Node has no prctl binding without a native addon; killing a process
 * group needs rackd alive; a sweep of pid files at the next start would let a dead rackd's
 * receive-pack run (and hold its quarantine) until then. On a host without setpriv, git is spawned
 * as it is (it still stops at the end of rackd's pipe when it reads it), and the sweep of
 * quarantines at start is what remains.
 */
export function spawnTiedGit(args: string[], env: NodeJS.ProcessEnv): ChildProcessWithoutNullStreams {
  const tie = findSetpriv();
  return tie === false ? spawn('git', args, { env }) : spawn(tie, ['--pdeathsig', 'TERM', '--', 'git', ...args], { env });
}
